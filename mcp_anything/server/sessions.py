"""Sessions of the handshake-era protocol (2025-11-25 and older), held in memory on this replica.

`initialize` opens one; later requests present its id in `Mcp-Session-Id`; it ends on `DELETE`,
after `idle_timeout` without a request, or when the store is full and it is the least recently used.
Each session has a queue feeding its server-to-client event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

END_OF_STREAM = b""  # queued to a session's event stream to close it


@dataclass(slots=True)
class Session:
    id: str
    principal: str
    protocol_version: str
    last_seen: float
    group: str = ""  # the endpoint's group: a session is only valid where it was opened
    events: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(maxsize=100))


class SessionStore:
    """In-memory sessions: idle expiry and a size cap (LRU)."""

    def __init__(
        self,
        *,
        idle_timeout: float = 3600.0,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._idle_timeout = idle_timeout
        self._max_sessions = max_sessions
        self._clock = clock
        # Set when the server shuts down: event streams end so they do not hold the graceful shutdown.
        self.closing = asyncio.Event()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, principal: str, protocol_version: str, group: str = "") -> Session:
        now = self._clock()
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if now - oldest.last_seen < self._idle_timeout and len(self._sessions) < self._max_sessions:
                break
            del self._sessions[oldest.id]
        session = Session(secrets.token_hex(16), principal, protocol_version, now, group)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen >= self._idle_timeout:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def broadcast(self, method: str, params: Mapping[str, Any] | None = None, *, group: str | None = None) -> None:
        """Queue a notification for every session's event stream (dropped for a stream that is not keeping up).

        With `group`, only that group's sessions get it.
        """
        message = {"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})}
        event = b"event: message\r\ndata: " + orjson.dumps(message) + b"\r\n\r\n"
        for session in self._sessions.values():
            if group is None or session.group == group:
                with contextlib.suppress(asyncio.QueueFull):
                    session.events.put_nowait(event)

    def retain(self, groups: set[str]) -> None:
        """End the sessions of groups that no longer exist (after a reload), closing their event streams."""
        for session in [s for s in self._sessions.values() if s.group not in groups]:
            del self._sessions[session.id]
            with contextlib.suppress(asyncio.QueueFull):
                session.events.put_nowait(END_OF_STREAM)
