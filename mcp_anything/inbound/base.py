"""The inbound authentication contract: what a strategy receives, returns and raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import Headers

from mcp_anything.identity import Identity


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
