"""Outbound strategies by name: one per upstream, chosen by `outbound_auth.strategy`.

A strategy module exposes `create(config: OutboundAuthConfig, root: Config) -> OutboundAuth`.
Modules are imported only when an upstream uses them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mcp_anything.outbound.base import OutboundAuth

if TYPE_CHECKING:
    from mcp_anything.config import Config, OutboundAuthConfig

STRATEGIES: dict[str, str] = {
    "none": "mcp_anything.outbound.none",
    "bearer": "mcp_anything.outbound.bearer",
    "api_key": "mcp_anything.outbound.api_key",
    "oauth2_client_credentials": "mcp_anything.outbound.client_credentials",
    "lua": "mcp_anything.outbound.lua",
    "js": "mcp_anything.outbound.js",
}


def create_outbound_auth(config: OutboundAuthConfig, root: Config) -> OutboundAuth:
    module = importlib.import_module(STRATEGIES[config.strategy])
    auth: OutboundAuth = module.create(config, root)
    return auth
