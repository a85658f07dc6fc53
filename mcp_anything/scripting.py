"""What the two script runtimes (`lua.Sandbox`, `js.Sandbox`) share, and what the script strategies
(`inbound.script`, `outbound.script`) need from them.

The strategies interpret results, cache, map errors and log the same way for both runtimes;
the runtimes share the error type, case-insensitive header mappings, the per-call deadline that
host functions such as `fetch` read, and the `ctx.env` allowlist. Nothing here loads an engine.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from mcp_anything.config import ConfigError

log = logging.getLogger(__name__)

ErrorKind = Literal["runtime", "timeout", "memory", "result"]


class ScriptError(Exception):
    """A script call failed; `kind` says how. `message` may quote the script's own error text.

    Raised by a host function (`fetch`, `json_decode`), it becomes an error in the script.
    """

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class CaseInsensitive(dict[str, Any]):
    """Header names, lower-cased: the script's `headers["Authorization"]` and `headers["authorization"]` alike."""


MAX_MISSES_LOGGED = 100  # unlisted ctx.env names warned about, once each

# .deadline: time.monotonic() at which the script call on this thread ends;
# .missed: the unlisted ctx.env names that call read.
_local = threading.local()


def time_left() -> float:
    """Seconds left in the script call running on this thread (for host functions such as `fetch`)."""
    deadline: float = getattr(_local, "deadline", math.inf)
    return deadline - time.monotonic()


def set_deadline(deadline: float) -> None:
    """Start (a time.monotonic() deadline) or end (math.inf) the script call on this thread, for `time_left`."""
    _local.deadline = deadline


class EnvAllowlist:
    """What a script's `ctx.env` shows, and what happens when it reads a name that is not listed.

    Such a read gives nil (Lua) or undefined (JavaScript), a warning naming the setting (once per
    name), and a note on the run's error if it then fails, so the failure points at the fix.
    """

    def __init__(self, values: Mapping[str, str] | None, *, setting: str, script: str) -> None:
        self.values = dict(values or {})
        self.setting = setting  # the config key that lists the names: lua.env or js.env
        self.script = script
        self._warned: set[str] = set()

    def miss(self, name: str) -> None:
        """Called on the script's thread when it reads an unlisted `ctx.env` name."""
        missed: list[str] = getattr(_local, "missed", [])
        if name not in missed:
            missed.append(name)
        if name not in self._warned and len(self._warned) < MAX_MISSES_LOGGED:
            self._warned.add(name)
            log.warning(
                "script %s read ctx.env.%s, which is not listed in %s (so it reads as nothing)",
                self.script,
                name,
                self.setting,
            )

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Around one script call on this thread: a ScriptError leaving it notes the unlisted names read."""
        _local.missed = []
        try:
            yield
        except ScriptError as exc:
            if not _local.missed:
                raise
            names = ", ".join(f"ctx.env.{name}" for name in _local.missed)
            raise ScriptError(exc.kind, f"{exc.message} (it read {names}, not listed in {self.setting})") from None
        finally:
            _local.missed = []


MIN_REDACTED_LENGTH = 6  # shorter secrets and words are not scrubbed from script error messages


def redact(message: str, secrets: Iterable[str]) -> str:
    """`message` without any of `secrets`, whole or word by word (the token in "Bearer <token>").

    A script may build its error message from what it was given (`error("bad token " .. token)`).
    """
    parts = {part for secret in secrets for part in (secret, *secret.split())}
    for part in sorted(parts, key=len, reverse=True):
        if len(part) >= MIN_REDACTED_LENGTH:
            message = message.replace(part, "[redacted]")
    return message


def read_script(path: Path, location: str) -> str:
    """A script file's text; a problem is a ConfigError naming `location` (the config key)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{location}: file not found: {path}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{location}: cannot read {path}: {exc}"]) from None


@dataclass(frozen=True, slots=True)
class Language:
    strategy: str  # the strategy and config block name: lua, js
    title: str  # for logs and errors: Lua, JavaScript
    type_name: Callable[[Any], str]  # a result value's type as the script's author knows it
    # A run's result as the script's return values: Lua returns several values, a JavaScript
    # script returns one, or an array standing for several (`return [true, claims]`).
    values: Callable[[tuple[Any, ...]], tuple[Any, ...]]


class Sandbox(Protocol):
    """A compiled script, run once per request (inbound) or per credential refill (outbound)."""

    name: str  # the script's file name, for logs and errors
    language: Language

    async def run(self, inputs: Mapping[str, Any]) -> tuple[Any, ...]:
        """Run the script with `inputs`; raise `lua.ScriptError` on any failure."""
        ...

    def close(self) -> None:
        """Release the runtimes (the strategy's `aclose`)."""
        ...


def lua_type(value: Any) -> str:
    """The Lua type name of a value converted by `lua.to_python`, for error messages."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "table"


def _lua_values(result: tuple[Any, ...]) -> tuple[Any, ...]:
    return result  # a Lua run already returns its values


LUA = Language("lua", "Lua", lua_type, _lua_values)


def js_type(value: Any) -> str:
    """The JavaScript type of a result converted to Python, for error messages."""
    if value is None:
        return "null or undefined"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _js_values(result: tuple[Any, ...]) -> tuple[Any, ...]:
    (value,) = result
    return tuple(value) if isinstance(value, list) else result


JS = Language("js", "JavaScript", js_type, _js_values)
