"""Reload the config on SIGHUP or when one of its files changes, without dropping a request.

Every `server.reload_interval` the reloader compares the modification time and size of
the config file and the local files it names (specs, overlays, Lua scripts); a change, or
SIGHUP, reads the config again and builds a whole new gateway off the event loop (specs
served by URL are fetched again only then), which the app serves at once (`GatewayApp.reload`);
a config that fails to load or build changes nothing: each problem is logged and the
previous config keeps serving. Files are compared again only after they change once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from mcp_anything import metrics
from mcp_anything.config import Config, ConfigError, ConfigSource

logger = logging.getLogger("mcp_anything.reload")

# Read once at startup: changing them needs a restart.
RESTART_ONLY = ("host", "port", "shutdown_timeout", "tracing", "audit_log")
OFF_POLL_SECONDS = 1.0  # with polling off, how often to look whether a reload turned it on

Signature = tuple[tuple[Path, int, int] | tuple[Path], ...]


def signature(paths: list[Path]) -> Signature:
    """What the files look like now: modification time and size, or absent."""
    seen: list[tuple[Path, int, int] | tuple[Path]] = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            seen.append((path,))
        else:
            seen.append((path, stat.st_mtime_ns, stat.st_size))
    return tuple(seen)


class Reloader:
    """Watches `source`; `current` is the config being served, `serve` builds a config and serves it.

    `serve` raises ConfigError (nothing changed) or returns how many tools the new config serves.
    """

    def __init__(
        self, source: ConfigSource, current: Callable[[], Config], serve: Callable[[Config], Awaitable[int]]
    ) -> None:
        self._source = source
        self._current = current
        self._serve = serve
        self._seen = signature(source.watched(current()))
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._sighup = False

    def start(self) -> None:
        """Start polling and handle SIGHUP; called on the serving event loop."""
        self._lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        # Signal handlers can only be set from the main thread (tests serve from another one).
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, self._spawn, "SIGHUP")
            self._sighup = True
        self._spawn_task(self._poll())

    async def stop(self) -> None:
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, reason: str) -> None:
        self._spawn_task(self.reload(reason))

    def _spawn_task(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self) -> None:
        while True:
            interval = self._current().server.reload_interval
            await asyncio.sleep(interval or OFF_POLL_SECONDS)
            if interval and signature(self._source.watched(self._current())) != self._seen:
                await self.reload("files changed")

    async def reload(self, reason: str) -> bool:
        """Load the config again and serve it; False (and the old config still serving) when it is wrong."""
        assert self._lock is not None, "start() first"
        async with self._lock:
            current = self._current()
            # Taken before reading, so a change made while this reload runs triggers the next one.
            self._seen = signature(self._source.watched(current))
            try:
                config = await asyncio.to_thread(self._source.load)
                self._seen = signature(self._source.watched(config))
                restart_only = _restart_only_changes(current, config)
                if restart_only:  # serve on as started, and say so
                    kept = {key: getattr(current.server, key) for key in restart_only}
                    config = config.model_copy(update={"server": config.server.model_copy(update=kept)})
                tools = await self._serve(config)
            except ConfigError as exc:
                self._failed(reason, exc.problems)
                return False
            except Exception as exc:  # a bug must not stop the serving config
                logger.exception("config reload failed", extra={"fields": {"reason": reason}})
                self._failed(reason, [f"unexpected error: {type(exc).__name__}"])
                return False
        metrics.RELOADS.labels("ok").inc()
        metrics.LAST_RELOAD.set_to_current_time()
        for key in restart_only:
            logger.warning("server.%s changed; the new value takes effect on restart", key)
        fields = {"reason": reason, "groups": len(config.groups), "tools": tools}
        logger.info("config reloaded", extra={"fields": fields})
        return True

    def _failed(self, reason: str, problems: list[str]) -> None:
        metrics.RELOADS.labels("error").inc()
        for problem in problems:
            logger.error("config reload: %s", problem, extra={"fields": {"reason": reason, "problem": problem}})
        logger.error(
            "config reload failed with %d problem(s); still serving the previous config",
            len(problems),
            extra={"fields": {"reason": reason}},
        )


def _restart_only_changes(old: Config, new: Config) -> list[str]:
    return [key for key in RESTART_ONLY if getattr(old.server, key) != getattr(new.server, key)]
