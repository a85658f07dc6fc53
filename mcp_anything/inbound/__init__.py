"""Inbound authentication: who the caller is (see `base` for the contract, `registry` for the strategies)."""

from mcp_anything.inbound.base import Authenticator, AuthError, InboundRequest
from mcp_anything.inbound.registry import create_authenticator

__all__ = ["AuthError", "Authenticator", "InboundRequest", "create_authenticator"]
