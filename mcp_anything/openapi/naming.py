"""Tool and argument names.

Tool names are `<prefix>_<base>` and always match `^[a-zA-Z0-9_-]{1,64}$`, which
many MCP clients enforce. `base` is the operation's `x-mcp-name`, else its
operationId in snake_case, else `<method>_<path slug>`. A derived name longer than
64 characters keeps as many leading words as fit and ends with `_` plus the first
six hex digits of the SHA-1 of the full name, so it is stable across restarts and
distinct from any other shortened name. An explicit `x-mcp-name` is never altered:
if it is invalid the spec is rejected.

Argument names are the spec's parameter and property names when they are valid
tool-argument keys (`^[a-zA-Z0-9_.-]{1,64}$`, what several LLM APIs accept).
Other names are rewritten: `<`/`>`/`<=`/`>=` become `_lt`/`_gt`/`_lte`/`_gte`
(Twilio's `StartTime<`), any other invalid character becomes `_`.
"""

from __future__ import annotations

import hashlib
import re

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ARGUMENT_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
MAX_LENGTH = 64

_ACRONYM_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")
_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^a-zA-Z0-9]+")
_COMPARISONS = (("<=", "_lte"), (">=", "_gte"), ("<", "_lt"), (">", "_gt"))
_INVALID_ARGUMENT_CHARS = re.compile(r"[^a-zA-Z0-9_.-]+")


def snake_case(text: str) -> str:
    """`getPetById` -> `get_pet_by_id`, `list-pets` -> `list_pets`, `HTTPServer` -> `http_server`."""
    text = _ACRONYM_WORD.sub(r"\1_\2", text)
    text = _LOWER_UPPER.sub(r"\1_\2", text)
    return _NON_WORD.sub("_", text).strip("_").lower()


def path_slug(method: str, path: str) -> str:
    """`GET /pets/{petId}/photos` -> `get_pets_pet_id_photos`."""
    slug = snake_case(path)
    return f"{method.lower()}_{slug or 'root'}"


def with_prefix(prefix: str, base: str) -> str:
    return f"{prefix}_{base}" if prefix else base


def without_prefix(prefix: str, name: str) -> str:
    """The tool's name as its upstream knows it: what capability claims list (`get_book`, not `shop_get_book`)."""
    return name.removeprefix(f"{prefix}_") if prefix else name


def shorten(name: str) -> str:
    """Fit a derived name into 64 characters on a word boundary, with a stable hash suffix."""
    if len(name) <= MAX_LENGTH:
        return name
    suffix = "_" + hashlib.sha1(name.encode()).hexdigest()[:6]
    room = MAX_LENGTH - len(suffix)
    kept = ""
    for word in name.split("_"):
        candidate = f"{kept}_{word}" if kept else word
        if len(candidate) > room:
            break
        kept = candidate
    return (kept or name[:room]) + suffix


def argument_name(name: str) -> str:
    """A valid tool-argument key for a spec parameter or property name (see the module docstring)."""
    if ARGUMENT_NAME.match(name):
        return name
    for token, replacement in _COMPARISONS:
        name = name.replace(token, replacement)
    name = _INVALID_ARGUMENT_CHARS.sub("_", name).strip("_") or "arg"
    return name[:MAX_LENGTH]
