"""Per-upstream `include` / `exclude`: which operations become tools.

A pattern matches an operation when it equals (or globs) its operationId or one of its
tags, or globs `METHOD /path` (`GET /pets/*`, `* /admin/*`; the method is case-insensitive).
With `include`, only matching operations become tools; `exclude` then removes matches.
A pattern that matches no operation at all is a config error: it is almost always a typo.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp_anything.openapi.operation import Operation


class Selection:
    def __init__(self, include: list[str], exclude: list[str]) -> None:
        self._include = include
        self._exclude = exclude
        self._used: set[tuple[str, int]] = set()

    def reason_to_skip(self, operation: Operation) -> str | None:
        included = not self._include
        for i, pattern in enumerate(self._include):
            if _matches(pattern, operation):
                self._used.add(("include", i))
                included = True
        if not included:
            return "not matched by include"
        for i, pattern in enumerate(self._exclude):
            if _matches(pattern, operation):
                self._used.add(("exclude", i))
                return f"excluded by {pattern!r}"
        return None

    def unused(self) -> list[tuple[str, str]]:
        """(config key, message) for every pattern that matched nothing."""
        return [
            (f"{kind}[{i}]", f"{pattern!r} matches no operationId, tag or `METHOD /path`")
            for kind, patterns in (("include", self._include), ("exclude", self._exclude))
            for i, pattern in enumerate(patterns)
            if (kind, i) not in self._used
        ]


def _matches(pattern: str, operation: Operation) -> bool:
    if " " in pattern.strip():
        method, _, path = pattern.strip().partition(" ")
        return fnmatchcase(operation.method, method.upper()) and fnmatchcase(operation.path, path.strip())
    operation_id = operation.node.get("operationId")
    if isinstance(operation_id, str) and fnmatchcase(operation_id, pattern):
        return True
    tags = operation.node.get("tags")
    return isinstance(tags, list) and any(isinstance(t, str) and fnmatchcase(t, pattern) for t in tags)
