"""What the script strategies (`inbound.script`, `outbound.script`) need from a script runtime.

Two runtimes implement it, `lua.Sandbox` and `js.Sandbox`; the strategies interpret results,
cache, map errors and log the same way for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


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
