"""Reload the config on SIGHUP or when one of its files changes, without dropping a request.

Every `server.reload_interval` the reloader compares the modification time and size of
the config file and the local files it names (specs, overlays, Lua scripts). A change is
read only once the files have settled: when they look the same at two polls in a row, so
a file being written in several steps is not read half-way. SIGHUP reads at once (an
operator sent it after editing). The config is read again and a whole new gateway is built
off the event loop (specs served by URL are fetched again only then), which the app serves
at once (`GatewayApp.reload`).

A config that fails to load or build changes nothing: each problem is logged and the
previous config keeps serving. So does a config that weakens the security of a group or of the server (see
`config.weakenings`), unless it sets `server.allow_weakening_reload: true` itself: a warning
names each group (or `server`) and what would have weakened. Files are compared again only after they
change once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from mcp_anything import metrics
from mcp_anything.config import Config, ConfigError, ConfigSource, Weakening, weakenings

logger = logging.getLogger("mcp_anything.reload")
ModelT = TypeVar("ModelT", bound=BaseModel)

# Read once at startup: changing them needs a restart.
RESTART_ONLY = ("host", "port", "shutdown_timeout", "tracing", "audit_log", "metrics.port")
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
        settling: Signature | None = None  # what the changed files looked like at the previous poll
        while True:
            interval = self._current().server.reload_interval
            await asyncio.sleep(interval or OFF_POLL_SECONDS)
            now = signature(self._source.watched(self._current()))
            if not interval or now == self._seen:
                settling = None
            elif now != settling:
                settling = now  # changed since the last look: perhaps still being written
            else:
                settling = None
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
                    server = config.server
                    for key in restart_only:
                        server = _replaced(server, key, _setting(current.server, key))
                    config = config.model_copy(update={"server": server})
                # Compared as it will be served: a new `port` or `host` (restart-only) moves no allowlist yet.
                weakened = weakenings(current, config)
                if weakened and not config.server.allow_weakening_reload:
                    self._refused(reason, weakened)
                    return False
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
        for weakening in weakened:
            extra = _weakening_fields(reason, weakening)
            logger.warning("config reloaded with weaker security (allowed): %s", weakening, extra=extra)
        fields = {"reason": reason, "groups": len(config.groups), "tools": tools}
        logger.info("config reloaded", extra={"fields": fields})
        return True

    def _refused(self, reason: str, weakened: list[Weakening]) -> None:
        metrics.RELOADS.labels("refused").inc()
        for weakening in weakened:
            extra = _weakening_fields(reason, weakening)
            logger.warning("config reload refused: it weakens %s", weakening, extra=extra)
        logger.warning(
            "config reload refused: it weakens %d security setting(s); still serving the previous config. "
            "If that is intended, set server.allow_weakening_reload: true in the new config",
            len(weakened),
            extra={"fields": {"reason": reason}},
        )

    def _failed(self, reason: str, problems: list[str]) -> None:
        metrics.RELOADS.labels("error").inc()
        for problem in problems:
            logger.error("config reload: %s", problem, extra={"fields": {"reason": reason, "problem": problem}})
        logger.error(
            "config reload failed with %d problem(s); still serving the previous config",
            len(problems),
            extra={"fields": {"reason": reason}},
        )


def _weakening_fields(reason: str, weakening: Weakening) -> dict[str, Any]:
    scope = {"group": weakening.group} if weakening.group is not None else {"scope": "server"}
    return {"fields": {"reason": reason, **scope, "weakening": weakening.what}}


def _restart_only_changes(old: Config, new: Config) -> list[str]:
    return [key for key in RESTART_ONLY if _setting(old.server, key) != _setting(new.server, key)]


def _setting(model: BaseModel, key: str) -> Any:
    """The value at a dotted key (`metrics.port`)."""
    value: Any = model
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _replaced(model: ModelT, key: str, value: Any) -> ModelT:
    """A copy of `model` with the dotted `key` set to `value`."""
    head, _, rest = key.partition(".")
    return model.model_copy(update={head: _replaced(getattr(model, head), rest, value) if rest else value})
