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


def set_header(request: HttpRequest, name: str, value: str) -> None:
    """Set a credential header, replacing any header of that name in any case.

    Header names are case-insensitive, and a header parameter declared in the
    spec (an `X-API-Key` argument, say) must never override the configured credential.
    """
    lowered = name.lower()
    for existing in [key for key in request.headers if key.lower() == lowered]:
        del request.headers[existing]
    request.headers[name] = value


def set_query(request: HttpRequest, name: str, value: str) -> None:
    """Set a credential query parameter, replacing any parameter of that name the arguments produced."""
    request.query[:] = [(key, item) for key, item in request.query if key != name]
    request.query.append((name, value))


def create_outbound_auth(config: OutboundAuthConfig, root: Config) -> OutboundAuth:
    module = importlib.import_module(STRATEGIES[config.strategy])
    auth: OutboundAuth = module.create(config, root)
    return auth
