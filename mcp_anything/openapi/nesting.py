"""How deeply arguments may nest, checked before any schema validator or rule walks them.

A validator recurses once per level, so arguments a thousand levels deep would end in a
recursion error (an internal error and a traceback) instead of an invalid-argument answer.
The walk here is iterative and stops at the first value that is too deep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp_anything.tools import ArgumentError

MAX_DEPTH = 64


def check_depth(arguments: Mapping[str, Any], limit: int = MAX_DEPTH) -> None:
    """Raise ArgumentError naming the top-level argument whose value nests deeper than `limit`."""
    for name, value in arguments.items():
        if not isinstance(value, dict | list):
            continue
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > limit:
                raise ArgumentError(f"argument {name!r}: nested more than {limit} levels deep")
            children = node.values() if isinstance(node, dict) else node
            stack += [(child, depth + 1) for child in children if isinstance(child, dict | list)]
