"""A real Redis for tests: Debian's redis-server (installed with apt-get when missing), on 127.0.0.1, no persistence."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.debian import debian_program
from tests.support.servers import free_port


@contextmanager
def redis_server() -> Iterator[str]:
    """`with redis_server() as url:` a fresh Redis at url (redis://127.0.0.1:PORT/0) until the block ends."""
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [
                debian_program("redis-server"),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.communicate(timeout=10)  # waits, and closes the pipe
