"""Outbound authentication: the credentials the gateway presents to one upstream (see `base`, `registry`)."""

from mcp_anything.outbound.base import OutboundAuth, OutboundAuthError
from mcp_anything.outbound.registry import create_outbound_auth

__all__ = ["OutboundAuth", "OutboundAuthError", "create_outbound_auth"]
