"""`oauth2_client_credentials.cache: redis://...`: one access token for every replica, fetched by one of them.

The token is kept in Redis under a key naming the token endpoint, client, scopes and audience, until the
moment a replica would renew it (the same `refresh_skew` rule as the local cache), so N replicas make
one token request per token lifetime instead of N. A replica that finds no token takes a short lock
(`SET NX PX`, released only by its holder) and fetches; the others poll the cache until the token
appears, or the lock is gone without one (that fetch failed) and one of them tries in turn. The lock
expires by itself after the token request's timeout, so a replica that dies while holding it stalls
the others only that long.

The value is sealed with AES-GCM under a key derived from `client_secret` (the key name as associated
data): whoever reads the Redis without the client's secret learns nothing usable, and a replica whose
secret differs (a rotation under way) reads nothing and fetches its own. When Redis fails, each replica
fetches for itself (still one request at a time, see client_credentials.py): a Redis outage costs token
requests, never calls. Expiry is stored as wall-clock time, so replicas' clocks are assumed in sync (NTP).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mcp_anything.config import ClientCredentialsConfig
from mcp_anything.shared_store import redis_client

log = logging.getLogger(__name__)

KEY_PREFIX = "mcp-anything:oauth2-token:"
POLL_SECONDS = 0.05  # how often a replica waiting on another's fetch looks for the token
LOCK_MARGIN_SECONDS = 2.0  # the lock outlives the token request's timeout by this much
_ERROR_LOG_SECONDS = 60.0  # one warning per Redis outage, not one per fetch
# Releases the lock only if it still holds this replica's value (it may have expired and been retaken).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

TokenRequest = Callable[[], Awaitable[tuple[str, float | None]]]


def renewal_margin(lifetime: float, skew: float) -> float:
    """How long before expiry a token is renewed: `skew`, or half the life of a token shorter than twice it."""
    return min(skew, lifetime / 2)


class _Unavailable(Exception):
    """Redis did not answer: the caller fetches on its own."""


class SharedTokens:
    def __init__(self, config: ClientCredentialsConfig) -> None:
        self._redis = redis_client(config.cache.get_secret_value(), "oauth2_client_credentials.cache")
        from coredis import PureToken  # importable once redis_client succeeded

        self._only_if_absent = PureToken.NX
        who = "\n".join((config.token_url, config.client_id, " ".join(config.scopes), config.audience or ""))
        self._key = KEY_PREFIX + hashlib.sha256(who.encode()).hexdigest()
        self._lock = self._key + ":lock"
        secret = config.client_secret.get_secret_value().encode()
        derived = HKDF(hashes.SHA256(), 32, salt=None, info=b"mcp-anything oauth2 token cache").derive(secret)
        self._aead = AESGCM(derived)
        self._skew = config.refresh_skew
        self._lock_ms = math.ceil((config.timeout + LOCK_MARGIN_SECONDS) * 1000)
        self._logged_at = -math.inf

    async def fetch(self, request: TokenRequest) -> tuple[str, float | None, bool]:
        """(token, seconds it stays valid or None, whether it came from the cache) via the cache or `request`."""
        try:
            return await self._fetch(request)
        except _Unavailable:
            token, lifetime = await request()
            return token, lifetime, False

    async def forget(self, token: str) -> None:
        """Drop `token` from the cache (an upstream refused it); a newer token stored meanwhile stays."""
        try:
            cached = await self._read()
            if cached is not None and cached[0] == token:
                await self._redis.delete([self._key])
        except _Unavailable:
            pass
        except Exception as exc:
            self._failed(exc)

    def close(self) -> None:
        self._redis.connection_pool.disconnect()

    async def _fetch(self, request: TokenRequest) -> tuple[str, float | None, bool]:
        owner = os.urandom(16).hex()
        while True:
            cached = await self._read()
            if cached is not None:
                return cached[0], cached[1], True
            if await self._call(self._redis.set(self._lock, owner, condition=self._only_if_absent, px=self._lock_ms)):
                break
            await asyncio.sleep(POLL_SECONDS)
        try:
            cached = await self._read()  # stored by another replica between the read and the lock
            if cached is not None:
                return cached[0], cached[1], True
            started = time.time()
            token, lifetime = await request()
            await self._store(token, lifetime, started)
            return token, lifetime, False
        finally:
            try:
                await self._redis.eval(_RELEASE, keys=[self._lock], args=[owner])
            except Exception as exc:  # the lock expires by itself
                self._failed(exc)

    async def _read(self) -> tuple[str, float | None] | None:
        sealed = await self._call(self._redis.get(self._key))
        if not sealed or len(sealed) <= 12:
            return None
        try:
            plain = self._aead.decrypt(sealed[:12], sealed[12:], self._key.encode())
        except InvalidTag:  # sealed with another client_secret
            return None
        entry = orjson.loads(plain)
        expires_at = entry["expires_at"]
        if expires_at is None:
            return entry["token"], None
        remaining = expires_at - time.time()
        return (entry["token"], remaining) if remaining > 0 else None

    async def _store(self, token: str, lifetime: float | None, started: float) -> None:
        expires_at = None if lifetime is None else started + lifetime
        keep_ms = None
        if lifetime is not None:
            keep_ms = math.floor((lifetime - renewal_margin(lifetime, self._skew)) * 1000 - (time.time() - started))
            if keep_ms <= 0:
                return
        nonce = os.urandom(12)
        plain = orjson.dumps({"token": token, "expires_at": expires_at})
        sealed = nonce + self._aead.encrypt(nonce, plain, self._key.encode())
        try:
            await self._redis.set(self._key, sealed, px=keep_ms)
        except Exception as exc:  # this replica still has its token; the others will fetch their own
            self._failed(exc)

    async def _call(self, command: Awaitable[Any]) -> Any:
        try:
            return await command
        except Exception as exc:
            self._failed(exc)
            raise _Unavailable from None

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._logged_at >= _ERROR_LOG_SECONDS:
            self._logged_at = now
            # The exception's type only: a connection error's text may repeat the URL with its password.
            log.warning("the OAuth2 token cache in Redis failed (%s); fetching tokens per replica", type(exc).__name__)
