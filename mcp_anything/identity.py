"""Who is calling: produced by inbound authentication, read by authorization and audit logs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller.

    `claims` is the full verified claim set (JWT claims, the introspection
    response, the claims a Lua script returned, or `{"sub": name}` for an API
    key); CEL rules see it as `jwt`. Nothing here is a secret: never put the
    token itself in an Identity.
    """

    strategy: str
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def principal(self) -> str:
        """Stable key for "the same caller": a session is bound to the principal that opened it."""
        return f"{self.strategy}:{self.subject or ''}"


ANONYMOUS = Identity(strategy="none")
