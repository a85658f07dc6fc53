"""Who is calling: produced by inbound authentication, read by authorization and audit logs."""

from __future__ import annotations

import hashlib
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

    `fingerprint` tells callers without a subject apart (see `fingerprint`): their tokens' client,
    or a hash of the token itself.
    """

    strategy: str
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    fingerprint: str | None = None

    @property
    def principal(self) -> str:
        """Stable key for "the same caller": a session is bound to the principal that opened it.

        Without a subject, the fingerprint: never the strategy (or the issuer) alone, which would make
        every such caller one. `#` cannot appear in a strategy name, so the two forms never meet.
        """
        if self.subject:
            return f"{self.strategy}:{self.subject}"
        if self.fingerprint:
            return f"{self.strategy}#{self.fingerprint}"
        return f"{self.strategy}:"


def fingerprint(claims: Mapping[str, Any], credential: str | None) -> str | None:
    """Who a caller without a subject is: its OAuth client (`client_id`, else `azp`), else its credential's hash.

    Two tokens of one client are one caller (a client-credentials token has no other identity); two
    distinct tokens without a client are two callers. The hash is truncated SHA-256: it names, never reveals.
    """
    for claim in ("client_id", "azp"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return f"client:{value}"
    if credential:
        return "credential:" + hashlib.sha256(credential.encode()).hexdigest()[:32]
    return None


ANONYMOUS = Identity(strategy="none")
