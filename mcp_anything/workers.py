"""`serve --workers N`: N forked processes accepting on one listening socket, and their supervisor.

The supervisor binds the socket once and forks the workers, which inherit it: the kernel hands each
new connection to one of them, so no balancing code of ours sits on the path. Each worker builds its
own app after the fork (its own event loop, HTTP pools, caches and breakers) and is an ordinary
single-process server: it reloads on SIGHUP and drains on SIGTERM or SIGINT by itself. The supervisor
only relays those signals to every worker, replaces a worker that dies while serving, and exits when
all of them have stopped after a shutdown.

Why not uvicorn's own multiprocess supervisor: it starts workers with `spawn`, pickling the app (ours
is built from a loaded config, not importable by name), and it answers SIGHUP by restarting every
worker, which closes event streams, where the app's own reload swaps the config without dropping any.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

RESPAWN_DELAY = 1.0  # seconds: a worker that keeps dying at start is not restarted in a tight loop
_RELAYED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every worker accepts on, bound before any worker starts (a port in use fails here, once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, workers: int, serve: Callable[[], int]) -> None:
        self._count = workers
        self._serve = serve  # runs one worker to its end, in the forked child; returns its exit status
        self._pids: set[int] = set()
        self._stopping = False

    def run(self) -> int:
        for signum in _RELAYED:
            signal.signal(signum, self._relay)
        for _ in range(self._count):
            self._spawn()
        log.info("serving with %d workers", self._count, extra={"fields": {"workers": sorted(self._pids)}})
        status = 0
        while self._pids:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            self._pids.discard(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if self._stopping:
                continue
            log.error("worker %d exited with %d while serving; starting another", pid, code)
            status = 1
            time.sleep(RESPAWN_DELAY)
            if not self._stopping:
                self._spawn()
        return 0 if self._stopping else status

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            # Until the app handles SIGHUP (a reload), one must not end the worker.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            code = 1
            try:
                code = self._serve()
            except BaseException:  # the child must never return into the supervisor's loop
                log.exception("worker failed")
            finally:
                logging.shutdown()
                os._exit(code)
        self._pids.add(pid)

    def _relay(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            # After a Ctrl-C the terminal already sent SIGINT to every worker; SIGTERM asks the same
            # (a graceful drain), where a second SIGINT would make uvicorn force its exit.
            self._stopping = True
            signum = signal.SIGTERM
        for pid in list(self._pids):
            with contextlib.suppress(ProcessLookupError):  # exited, not yet reaped
                os.kill(pid, signum)
