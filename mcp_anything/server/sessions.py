"""Sessions of the handshake-era protocol (2025-11-25 and older), carried by their ids.

A session id is a sealed token (`server.session_tokens`): it holds the protocol version, the client's
info and capabilities, the principal it is bound to, the endpoint, issue time and expiry. Any process
holding the same key serves it; nothing about a session has to be found in this process's memory.
What this process does keep:

- the revocation list: sessions ended by `DELETE` or evicted by the per-principal cap, remembered
  until they would have expired, here and, with `revocations: redis://...`, in Redis for every replica;
- a small table of the sessions each principal opened here, most recent last, so that one caller
  opening many sessions ends its own oldest ones and never anyone else's;
- the open event streams: GET streams of sessions and `subscriptions/listen` streams, which stay on
  the process holding the connection, capped per session and overall.

`initialize` is rate-limited per principal with the `limits` library, in `server.rate_limit_storage`
(shared by every replica when that is Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from limits import parse as parse_rate
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY

from mcp_anything.config import SessionsConfig
from mcp_anything.ratelimit import KEY_PREFIX, STORAGE_ERROR_LOG_SECONDS, Limiter
from mcp_anything.server.session_tokens import ClientTooLarge, SessionClaims, SessionCodec, random_secret
from mcp_anything.shared_store import redis_client

__all__ = [
    "END_OF_STREAM",
    "ClientTooLarge",
    "InitializeLimited",
    "SessionClaims",
    "SessionStore",
    "SessionsUnavailable",
    "Stream",
]

logger = logging.getLogger("mcp_anything.sessions")

END_OF_STREAM: Final = b""  # queued to an event stream to end it
STREAM_QUEUE: Final = 100  # events waiting for one slow stream; more are dropped
MAX_PRINCIPAL_CHARS: Final = 256  # longer principals are bound by their hash
MAX_TRACKED_PRINCIPALS: Final = 100_000  # principals whose sessions this process counts; the least recent go
_REVOKED_KEY: Final = "mcp-anything:session-revoked:"


class SessionsUnavailable(Exception):
    """The shared revocation list (Redis) could not be asked: fail closed, the caller retries."""


@dataclass(frozen=True, slots=True)
class InitializeLimited(Exception):
    """The principal opened sessions faster than `initialize_rate`."""

    rule: str
    retry_after: int


@dataclass(eq=False, slots=True)
class Stream:
    """One open server-to-client stream: a session's GET stream, or a `subscriptions/listen` stream."""

    endpoint: str
    caller: str = ""  # whom the per-caller cap counts it against
    session_id: str | None = None  # None: a listen stream (no session)
    subscription_id: str | int | None = None  # a listen stream's request id, tagged on each frame
    notify: bool = True  # False: a listen stream that asked for no kind of notification this server sends
    events: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(maxsize=STREAM_QUEUE))

    def push(self, event: bytes) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a stream not keeping up misses a level-triggered event
            self.events.put_nowait(event)

    def end(self) -> None:
        """End the stream cleanly, even when its queue is full."""
        while True:
            try:
                self.events.put_nowait(END_OF_STREAM)
                return
            except asyncio.QueueFull:
                self.events.get_nowait()


def _binding(principal: str) -> str:
    """What a token binds: the principal, or its hash when long (a token has room for ~900 characters)."""
    if len(principal) <= MAX_PRINCIPAL_CHARS:
        return principal
    return "sha256:" + hashlib.sha256(principal.encode()).hexdigest()


def sse_event(message: Mapping[str, Any]) -> bytes:
    return b"event: message\r\ndata: " + orjson.dumps(message) + b"\r\n\r\n"


class _Revocations:
    """Ended sessions until they would expire: in this process always, and in Redis when configured."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._local: dict[str, int] = {}  # session id -> expiry (epoch seconds)
        self._next_sweep = 1024
        self.uri = "memory"
        self._redis: Any = None
        self._logged_at = -math.inf

    def _failed(self, what: str) -> SessionsUnavailable:
        now = time.monotonic()
        if now - self._logged_at >= STORAGE_ERROR_LOG_SECONDS:  # one line per outage, not one per request
            self._logged_at = now
            logger.exception("cannot %s the session revocation list; refusing session requests until it answers", what)
        return SessionsUnavailable()

    def use(self, uri: str) -> None:
        if uri == self.uri:
            return
        client = None
        if uri != "memory":
            client = redis_client(uri, "server.sessions.revocations")
        self.close()
        self.uri = uri
        self._redis = client

    def close(self) -> None:
        if self._redis is not None:
            self._redis.connection_pool.disconnect()
            self._redis = None

    async def revoke(self, session_id: str, expires_at: int) -> None:
        self._local[session_id] = expires_at
        if len(self._local) >= self._next_sweep:
            now = self._clock()
            self._local = {k: v for k, v in self._local.items() if v > now}
            self._next_sweep = max(1024, 2 * len(self._local))
        if self._redis is not None:
            seconds = max(1, math.ceil(expires_at - self._clock()))
            try:
                await self._redis.set(_REVOKED_KEY + session_id, b"1", ex=seconds)
            except Exception as exc:
                raise self._failed("write to") from exc

    async def revoked(self, session_id: str) -> bool:
        if session_id in self._local:
            return True
        if self._redis is None:
            return False
        try:
            return bool(await self._redis.exists([_REVOKED_KEY + session_id]))
        except Exception as exc:
            raise self._failed("read") from exc


class SessionStore:
    """This process's part of sessions: the codec, revocations, per-principal table and open streams.

    `configure` (at start and on every reload) applies `server.sessions`; what a reload must not lose
    (revocations, the table, open streams, a generated key) is kept.
    """

    def __init__(
        self,
        config: SessionsConfig | None = None,
        *,
        limiter: Limiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._generated_key: bytes | None = None
        self._revocations = _Revocations(clock)
        self._by_principal: OrderedDict[str, OrderedDict[str, int]] = OrderedDict()  # -> {session id: expiry}
        self._streams: set[Stream] = set()
        # Oldest first: what a new stream replaces when its session or its caller is at the cap.
        self._session_streams: dict[str, list[Stream]] = {}
        self._caller_streams: dict[str, list[Stream]] = {}
        # Set when the server shuts down: streams end so they do not hold the graceful shutdown.
        self.closing = asyncio.Event()
        self.configure(config or SessionsConfig(), limiter or Limiter("memory://"))

    def configure(self, config: SessionsConfig, limiter: Limiter) -> None:
        """Apply `config`; `limiter` is the gateway's rate-limit storage, which counts `initialize` too.

        A lowered stream cap applies from the next stream opened: streams already open are not cut.
        """
        keys: list[bytes | str] = [k.get_secret_value() for k in (config.key, *config.previous_keys) if k is not None]
        if config.key is None:
            if self._generated_key is None:
                self._generated_key = random_secret()
                logger.warning(
                    "server.sessions.key is not set: this process made a random key, so its sessions are served"
                    " by this process only; set it (the same on every replica and worker) to share them"
                )
            keys.insert(0, self._generated_key)
        self._revocations.use(config.revocations.get_secret_value())  # the step that can fail: first
        self._codec = SessionCodec(keys, ttl=config.ttl, clock=self._clock)
        self._config = config
        self._limiter = limiter
        self._initialize_rate = parse_rate(config.initialize_rate) if config.initialize_rate else None

    def __len__(self) -> int:
        """Sessions opened on this process that have not ended or expired."""
        now = self._clock()
        return sum(1 for table in self._by_principal.values() for expiry in table.values() if expiry > now)

    # --- sessions -----------------------------------------------------------------------

    async def open(
        self,
        *,
        principal: str,
        caller: str,
        protocol_version: str,
        endpoint: str,
        client: Mapping[str, Any] | None = None,
    ) -> str:
        """A new session's id, bound to `principal`; `caller` is who the caps count (usually the principal).

        Raises InitializeLimited, ClientTooLarge (the client's info is too big) or SessionsUnavailable.
        """
        await self._check_rate(caller)
        token = self._codec.issue(
            protocol_version=protocol_version, principal=_binding(principal), endpoint=endpoint, client=client
        )
        claims = self._codec.open(token, endpoint)
        assert claims is not None  # just issued with the current key
        table = self._by_principal.pop(caller, None) or OrderedDict()
        self._by_principal[caller] = table  # most recently active last
        now = self._clock()
        for session_id in [s for s, expiry in table.items() if expiry <= now]:
            del table[session_id]
        while len(table) >= self._config.max_per_principal:
            oldest, expiry = table.popitem(last=False)
            await self._revoke(oldest, expiry)
        table[claims.id] = claims.expires_at
        while len(self._by_principal) > MAX_TRACKED_PRINCIPALS:
            self._by_principal.popitem(last=False)  # forgotten, not ended: their sessions stay valid
        return token

    async def _check_rate(self, caller: str) -> None:
        if self._initialize_rate is None:
            return
        keys = (KEY_PREFIX, "initialize", caller)
        strategy = self._limiter.strategy
        try:
            if await strategy.hit(self._initialize_rate, *keys):
                return
            stats = await strategy.get_window_stats(self._initialize_rate, *keys)
        except Exception:
            # Like tool rate limits: a storage outage lets sessions open rather than taking every client down.
            self._limiter.storage_failed(counting="initialize")
            return
        raise InitializeLimited(
            f"server.sessions.initialize_rate ({self._config.initialize_rate} per caller)",
            max(1, math.ceil(stats.reset_time - time.time())),
        )

    async def get(self, token: str, endpoint: str) -> SessionClaims | None:
        """The session `token` opens at `endpoint`, or None: forged, altered, expired, foreign or ended.

        Raises SessionsUnavailable when the shared revocation list cannot be asked.
        """
        claims = self._codec.open(token, endpoint)
        if claims is None or await self._revocations.revoked(claims.id):
            return None
        return claims

    @staticmethod
    def belongs(claims: SessionClaims, principal: str) -> bool:
        """Whether the session was opened by `principal`: another caller's credentials cannot ride on it."""
        return hmac.compare_digest(claims.principal.encode(), _binding(principal).encode())

    async def end(self, claims: SessionClaims, caller: str) -> None:
        """End a session (DELETE) on every replica that shares the revocation list; close its streams here."""
        table = self._by_principal.get(caller)
        if table is not None:
            table.pop(claims.id, None)
        await self._revoke(claims.id, claims.expires_at)

    async def _revoke(self, session_id: str, expires_at: int) -> None:
        for stream in list(self._session_streams.get(session_id, ())):
            self.close_stream(stream)
            stream.end()
        await self._revocations.revoke(session_id, expires_at)

    # --- streams ------------------------------------------------------------------------

    def open_stream(
        self,
        endpoint: str,
        *,
        caller: str,
        session_id: str | None = None,
        subscription_id: str | int | None = None,
        notify: bool = True,
    ) -> Stream | None:
        """Register a stream; None when this process already holds `max_streams`.

        A session's streams beyond `max_streams_per_session`, and a caller's beyond `max_per_principal`, end
        oldest first: a client that reconnects replaces its stream rather than piling up connections, and
        one caller's streams never push out another's.
        """
        for index, key, cap in (
            (self._session_streams, session_id, self._config.max_streams_per_session),
            (self._caller_streams, caller, self._config.max_per_principal),
        ):
            held = index.get(key, []) if key is not None else []
            while len(held) >= cap:
                old = held[0]
                self.close_stream(old)
                old.end()
        if len(self._streams) >= self._config.max_streams:
            return None
        stream = Stream(endpoint, caller, session_id, subscription_id, notify)
        self._streams.add(stream)
        self._caller_streams.setdefault(caller, []).append(stream)
        if session_id is not None:
            self._session_streams.setdefault(session_id, []).append(stream)
        return stream

    def close_stream(self, stream: Stream) -> None:
        """Forget a stream (it ended, or is being ended); safe to call more than once."""
        self._streams.discard(stream)
        for index, key in ((self._session_streams, stream.session_id), (self._caller_streams, stream.caller)):
            if key is None:
                continue
            held = index.get(key)
            if held is not None and stream in held:
                held.remove(stream)
                if not held:
                    del index[key]

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    def broadcast(self, method: str, *, endpoint: str | None = None) -> None:
        """Queue a notification for every open stream (of `endpoint`'s, when given) on this process.

        A listen stream's copy is tagged with its subscription id, as `subscriptions/listen` requires.
        """
        shared = sse_event({"jsonrpc": "2.0", "method": method})
        for stream in self._streams:
            if not stream.notify or (endpoint is not None and stream.endpoint != endpoint):
                continue
            if stream.subscription_id is None:
                stream.push(shared)
            else:
                meta = {SUBSCRIPTION_ID_META_KEY: stream.subscription_id}
                stream.push(sse_event({"jsonrpc": "2.0", "method": method, "params": {"_meta": meta}}))

    def retain(self, endpoints: set[str]) -> None:
        """End the streams of endpoints that no longer exist (after a reload)."""
        for stream in [s for s in self._streams if s.endpoint not in endpoints]:
            self.close_stream(stream)
            stream.end()

    async def aclose(self) -> None:
        self._revocations.close()
