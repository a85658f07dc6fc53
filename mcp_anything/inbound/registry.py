"""Inbound strategies by name: one per group, chosen by `inbound_auth.strategy`.

A strategy module exposes `create(config: InboundAuthConfig, root: Config) -> Authenticator`.
Modules are imported only when a group uses them, so an unused strategy's
dependencies (lupa's Lua runtime, joserfc) never load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mcp_anything.inbound.base import Authenticator

if TYPE_CHECKING:
    from mcp_anything.config import Config, InboundAuthConfig

STRATEGIES: dict[str, str] = {
    "none": "mcp_anything.inbound.none",
    "jwt": "mcp_anything.inbound.jwt",
    "introspection": "mcp_anything.inbound.introspection",
    "api_key": "mcp_anything.inbound.api_key",
    "lua": "mcp_anything.inbound.lua",
    "js": "mcp_anything.inbound.js",
}


def create_authenticator(config: InboundAuthConfig, root: Config) -> Authenticator:
    module = importlib.import_module(STRATEGIES[config.strategy])
    authenticator: Authenticator = module.create(config, root)
    return authenticator
