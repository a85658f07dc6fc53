"""Inbound authentication: one strategy per group, chosen by `inbound_auth.strategy`.

A strategy module exposes `create(config: InboundAuthConfig, root: Config) -> Authenticator`.
Modules are imported only when a group uses them, so an unused strategy's
dependencies (lupa, authlib) never load.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from starlette.datastructures import Headers

from mcp_anything.identity import Identity

if TYPE_CHECKING:
    from mcp_anything.config import Config, InboundAuthConfig

STRATEGIES: dict[str, str] = {
    "none": "mcp_anything.inbound.none",
    "jwt": "mcp_anything.inbound.jwt",
    "introspection": "mcp_anything.inbound.introspection",
    "api_key": "mcp_anything.inbound.api_key",
    "lua": "mcp_anything.inbound.lua",
}


@dataclass(frozen=True, slots=True)
class InboundRequest:
    method: str
    path: str
    headers: Headers  # case-insensitive


class AuthError(Exception):
    """Authentication failed: the request goes no further.

    `description` is shown to the caller: say what failed, never internals or
    token contents. `status` is 401 (bad or missing credentials), 403
    (insufficient scope) or 503 (the identity provider could not be asked).
    """

    def __init__(self, description: str, *, status: int = 401, error: str = "invalid_token", scope: str | None = None):
        super().__init__(description)
        self.description = description
        self.status = status
        self.error = error
        self.scope = scope


class Authenticator(Protocol):
    # Issuers to advertise in RFC 9728 protected resource metadata; empty: serve none.
    authorization_servers: list[str]

    async def authenticate(self, request: InboundRequest) -> Identity:
        """Return the caller's identity or raise AuthError."""
        ...

    async def aclose(self) -> None: ...


def create_authenticator(config: InboundAuthConfig, root: Config) -> Authenticator:
    module = importlib.import_module(STRATEGIES[config.strategy])
    authenticator: Authenticator = module.create(config, root)
    return authenticator
