"""`server.metrics.port`: /metrics on a listener of its own, in the same process and event loop.

A second uvicorn server on a socket bound at startup (a port in use fails startup, naming
the key), serving only what it is given. It starts and stops with the app's lifespan, and
leaves signals to the main server: uvicorn's own signal capture would take SIGINT and SIGTERM
away from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from mcp_anything.config import ConfigError

SHUTDOWN_GRACE_SECONDS = 1  # a scrape is one short request


class _SignalFreeServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MetricsListener:
    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.host = host
        self.port = port
        config = uvicorn.Config(
            app,
            interface="asgi3",  # a bound method, which uvicorn's detection would take for ASGI 2
            lifespan="off",
            log_config=None,  # the gateway's logging stays as configured
            access_log=False,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
        self._server = _SignalFreeServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and listen (a scrape that comes early waits in the backlog); raise ConfigError if it cannot."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen()
        except OSError as exc:
            sock.close()
            problem = f"server.metrics.port: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            raise ConfigError([problem]) from None
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
