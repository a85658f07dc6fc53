"""What the bearer-token strategies (jwt, introspection) share: RFC 6750 token
extraction, OAuth scopes, the claims → Identity step and the cache of verified tokens."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from mcp_anything.identity import Identity, fingerprint
from mcp_anything.inbound.base import AuthError, InboundRequest

# Real access tokens are a few KB at most; anything bigger is refused before it
# is decoded, so an attacker cannot make the gateway parse megabytes per request.
MAX_TOKEN_BYTES = 16 * 1024


def bearer_token(request: InboundRequest) -> str:
    """The token from `Authorization: Bearer <token>` (RFC 6750 section 2.1, the only place read)."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthError("missing bearer token: send `Authorization: Bearer <token>`")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("the Authorization header must be `Bearer <token>`")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthError(f"token is larger than {MAX_TOKEN_BYTES} bytes")
    return token


def _scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth scopes: `scope` as a space-separated string (RFC 8693/9068), or `scp` as a list or string."""
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def check_scopes(scopes: frozenset[str], required: Iterable[str]) -> None:
    """403 `insufficient_scope` naming every required scope (RFC 6750 section 3.1)."""
    required = list(required)
    missing = [scope for scope in required if scope not in scopes]
    if missing:
        raise AuthError(
            f"token lacks required scope(s): {' '.join(missing)}",
            status=403,
            error="insufficient_scope",
            scope=" ".join(required),
        )


def identity_from_claims(
    strategy: str, claims: dict[str, Any], token: str, subject_claims: Iterable[str] = ("sub",)
) -> Identity:
    """An Identity whose subject is the first string among `subject_claims`; without one, fingerprinted."""
    subject = next((claims[c] for c in subject_claims if isinstance(claims.get(c), str)), None)
    return Identity(
        strategy=strategy,
        subject=subject,
        scopes=_scopes_of(claims),
        claims=MappingProxyType(claims),
        fingerprint=None if subject else fingerprint(claims, token),
    )


class IdentityCache:
    """Identities of tokens already verified, by the token's SHA-256, each until its own deadline.

    Bounded: when full, expired entries go first, then the oldest. The token
    itself is never stored.
    """

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[float, Identity]] = {}  # digest -> (deadline on `clock`, identity)

    @staticmethod
    def digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, digest: bytes) -> Identity | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[digest]
            return None
        return entry[1]

    def put(self, digest: bytes, identity: Identity, ttl: float) -> None:
        """Keep `identity` for `ttl` seconds; nothing is kept when `ttl` is not positive."""
        if ttl <= 0:
            return
        now = self._clock()
        if len(self._entries) >= self._max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            while len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[digest] = (now + ttl, identity)

    def clear(self) -> None:
        self._entries.clear()
