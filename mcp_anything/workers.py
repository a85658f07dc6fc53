"""`serve --workers N`: N forked processes accepting on one listening socket, and their supervisor.

The supervisor binds the socket once and forks the workers, which inherit it: the kernel hands each
new connection to one of them, so no balancing code of ours sits on the path. Each worker builds its
own app after the fork (its own event loop, HTTP pools, caches and breakers) and is an ordinary
single-process server: it reloads on SIGHUP and drains on SIGTERM or SIGINT by itself. The supervisor
only relays those signals to every worker, replaces a worker that dies while serving (but stops them
all when one finds the config cannot be served), and exits when all of them have stopped.

Metrics: the supervisor makes a private directory (mode 0700, removed at exit) and names it in
PROMETHEUS_MULTIPROC_DIR before prometheus-client is first imported, so each worker writes its series
to files there and any worker's /metrics sums them all; the supervisor marks a dead worker's live
gauges gone.

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
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from types import FrameType

log = logging.getLogger(__name__)

RESPAWN_DELAY = 1.0  # seconds: a worker that keeps dying at start is not restarted in a tight loop
_RELAYED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_metrics_directory() -> Iterator[str]:
    """A private directory for every worker's metric files, named in the environment until the block ends.

    prometheus-client reads the variable once, when first imported, so it must not have been imported yet.
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError(f"{METRICS_DIR_ENV} must be set before prometheus_client is imported")
    with tempfile.TemporaryDirectory(prefix="mcp-anything-metrics-") as directory:  # made with mode 0700
        os.environ[METRICS_DIR_ENV] = directory
        try:
            yield directory
        finally:
            del os.environ[METRICS_DIR_ENV]


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
    def __init__(
        self, workers: int, serve: Callable[[], int], fatal: tuple[int, ...], metrics_dir: str | None = None
    ) -> None:
        self._count = workers
        self._metrics_dir = metrics_dir  # where the workers' metric files are, from `shared_metrics_directory`
        self._serve = serve  # runs one worker to its end, in the forked child; returns its exit status
        self._fatal = fatal  # exit statuses of a worker that stop them all (it could not start serving)
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
            pid, wait_status = os.wait()
            self._pids.discard(pid)
            if self._metrics_dir is not None:
                self._forget_metrics(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if self._stopping:
                continue
            if code in self._fatal:  # it could not start: another worker would fail the same way
                log.error("worker %d could not serve the config (exit %d); stopping every worker", pid, code)
                status = code
                self._stop(signal.SIGTERM)
                continue
            log.error("worker %d exited with %d while serving; starting another", pid, code)
            time.sleep(RESPAWN_DELAY)
            if not self._stopping:
                self._spawn()
        return status

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

    def _forget_metrics(self, pid: int) -> None:
        """A dead worker's live gauges (sessions, streams, circuits, ...) stop counting; its counters stay."""
        # Imported here: importing prometheus-client before the directory is set would fix it in one-process mode.
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, self._metrics_dir)

    def _relay(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._send(signal.SIGHUP)
        else:
            # After a Ctrl-C the terminal already sent SIGINT to every worker; SIGTERM asks the same
            # (a graceful drain), where a second SIGINT would make uvicorn force its exit.
            self._stop(signal.SIGTERM)

    def _stop(self, signum: int) -> None:
        self._stopping = True
        self._send(signum)

    def _send(self, signum: int) -> None:
        for pid in list(self._pids):
            with contextlib.suppress(ProcessLookupError):  # exited, not yet reaped
                os.kill(pid, signum)
