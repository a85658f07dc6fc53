"""Connection limits in front of the app: a bounded request head, a head deadline, connection caps.

uvicorn's httptools parser buffers a request head for as long as it keeps arriving, with no
limit on its size, and keeps a connection that never finishes its head open for ever; its
`limit_concurrency` answers 503 to every request once the count is reached, `/healthz`
included. So the gateway serves HTTP through `GuardedProtocol`, uvicorn's httptools
protocol with `server.limits` enforced per connection:

- a head (request line and headers) larger than `max_header_bytes` is answered 431, a head
  not complete within `header_timeout` 408, and the connection is closed;
- `max_connections` overall and `max_connections_per_client` per client address: at a cap,
  the oldest connection still sending its head is closed to make room (a complete request
  is never dropped for a flood of incomplete ones, so `/healthz` keeps answering); when no
  connection is waiting for its head, the new connection is answered 503.

Bytes are counted as they arrive, before the parser sees them, so what a connection holds
before its head is complete is at most `max_header_bytes` plus one read.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mcp_anything.config import LimitsConfig

logger = logging.getLogger(__name__)

# Descriptors kept for everything but client connections: upstream pools, log files, Redis, the listener.
FD_RESERVE = 128

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


class ConnectionGuard:
    """The connection counts of one server, shared by all its connections."""

    def __init__(self, limits: LimitsConfig, fd_limit: int | None = None) -> None:
        self.max_header_bytes = int(limits.max_header_bytes)
        self.header_timeout = limits.header_timeout
        self.max_connections = _within_descriptors(limits.max_connections, fd_limit)
        self.max_per_client = min(limits.max_connections_per_client, self.max_connections)
        self.open: Counter[str] = Counter()  # client address -> open connections
        self.total = 0
        # Connections still sending a request head, oldest first: the first to go at a cap.
        self.waiting: dict[GuardedProtocol, None] = {}

    def admit(self, connection: GuardedProtocol) -> bool:
        """Count a new connection, closing the oldest one still sending its head if a cap is reached."""
        address = connection.address
        if self.open[address] >= self.max_per_client and not self._evict(address):
            return False
        if self.total >= self.max_connections and not self._evict(None):
            return False
        self.open[address] += 1
        self.total += 1
        return True

    def release(self, connection: GuardedProtocol) -> None:
        self.waiting.pop(connection, None)
        self.total -= 1
        self.open[connection.address] -= 1
        if not self.open[connection.address]:
            del self.open[connection.address]

    def _evict(self, address: str | None) -> bool:
        victim = next((c for c in self.waiting if address is None or c.address == address), None)
        if victim is None:
            return False
        victim.refuse(503)  # releases it: connection_lost runs at once, or refuse() released it already
        return True


def _within_descriptors(wanted: int, fd_limit: int | None) -> int:
    """`max_connections`, lowered to what the process's descriptor limit can hold beside everything else."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0] if fd_limit is None else fd_limit
    if limit == resource.RLIM_INFINITY or wanted <= limit - FD_RESERVE:
        return wanted
    fitted = max(1, limit - FD_RESERVE)
    logger.warning(
        "server.limits.max_connections is %d but the open-file limit is %d; at most %d connections are accepted"
        " (raise the limit with `ulimit -n` or the container's nofile setting)",
        wanted,
        limit,
        fitted,
    )
    return fitted


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `ConnectionGuard`'s limits; see the module docstring."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address = ""
        self._counted = False
        self._in_head = False
        self._head_bytes = 0
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.address = self.client[0] if self.client else ""
        if not self.guard.admit(self):
            self.refuse(503)
            return
        self._counted = True
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        if self._counted:
            self._counted = False
            self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.guard.max_header_bytes and not self.transport.is_closing():
            self.refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._await_head()

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()

    def refuse(self, status: int) -> None:
        """Answer `status` without reading further, and close."""
        self._head_done()
        if self._counted:  # counted out now: a cap that evicts this connection admits the next one at once
            self._counted = False
            self.guard.release(self)
        if not self.transport.is_closing():
            reason = _REASONS[status]
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                % (status, reason, len(reason), reason)
            )
            self.transport.close()

    def _await_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self.guard.waiting[self] = None
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.guard.header_timeout, self.refuse, 408)

    def _head_done(self) -> None:
        self._in_head = False
        self.guard.waiting.pop(self, None)
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None


def guarded_protocol(limits: LimitsConfig) -> type[GuardedProtocol]:
    """A protocol class for `uvicorn.Config(http=...)`, its connections sharing one guard."""
    return type("GuardedProtocol", (GuardedProtocol,), {"guard": ConnectionGuard(limits)})
