"""Outbound authentication: the credentials the gateway presents to one upstream.

A strategy module exposes `create(config: OutboundAuthConfig, root: Config) -> OutboundAuth`.
The caller's own credentials never reach an upstream: strategies only ever add
the upstream's configured credentials to a request the gateway built itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from mcp_anything.tools import HttpRequest

if TYPE_CHECKING:
    from mcp_anything.config import Config, OutboundAuthConfig

STRATEGIES: dict[str, str] = {
    "none": "mcp_anything.outbound.none",
    "bearer": "mcp_anything.outbound.bearer",
    "api_key": "mcp_anything.outbound.api_key",
    "oauth2_client_credentials": "mcp_anything.outbound.client_credentials",
    "lua": "mcp_anything.outbound.lua",
}


class OutboundAuthError(Exception):
    """Credentials could not be obtained; the message becomes the tool's isError text (never a secret)."""


class OutboundAuth(Protocol):
    async def apply(self, request: HttpRequest) -> None:
        """Add credentials to `request` (headers or query); raise OutboundAuthError on failure."""
        ...

    async def refresh(self) -> bool:
        """The upstream answered 401: drop cached credentials; True if one retry may succeed."""
        ...

    async def aclose(self) -> None: ...


def create_outbound_auth(config: OutboundAuthConfig, root: Config) -> OutboundAuth:
    module = importlib.import_module(STRATEGIES[config.strategy])
    auth: OutboundAuth = module.create(config, root)
    return auth
