"""Run real servers for tests: an ASGI app on uvicorn, on 127.0.0.1, in a background thread."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import Receive


class ServerThread:
    """`with ServerThread(app) as server:` serves `app` at `server.url` until the block ends.

    The socket is bound before the thread starts, so the port is known and
    nothing else can take it in between.
    """

    def __init__(self, app: Any, *, lifespan: str = "auto") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Blackhole:
    """`with Blackhole() as url:` a listening port whose accept queue is full: connecting hangs (SYNs dropped)."""

    def __enter__(self) -> str:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        port = self._listener.getsockname()[1]
        self._fillers = []
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            self._fillers.append(filler)
        time.sleep(0.1)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        for sock in [*self._fillers, self._listener]:
            sock.close()


async def read_body(receive: Receive) -> bytes:
    """The whole body of an ASGI HTTP request."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate a child process, killing it if it does not exit within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
