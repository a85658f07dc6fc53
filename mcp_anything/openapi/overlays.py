"""OpenAPI Overlay 1.0: change a spec without editing it.

An overlay is `{overlay: 1.0.x, info: {title, version}, extends?, actions: [...]}`; each
action has a JSONPath `target` (jsonpath-ng, with filters such as
`$.paths.*[?(@.tags[0] == 'admin')]`) and either `remove: true` or an `update`:
objects are merged into each matched object (nested objects merged recursively, arrays
appended to, scalars replaced), a matched array gets the update appended, a matched
scalar is replaced. Overlays apply in the order listed, to the spec as written (before Swagger
2.0 conversion), before tools are built.

A target that matches nothing is an error naming the overlay and the action, because
an overlay that silently stops matching (after the spec changed) would, say, stop
hiding an admin operation. Set `x-mcp-optional: true` on an action that may
legitimately match nothing. Unknown action keys are errors too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from jsonpath_ng import Fields, Index
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as parse_jsonpath

from mcp_anything.openapi.documents import SpecError, parse

_ACTION_KEYS = frozenset({"target", "description", "update", "remove"})


def load_overlay(path: Path) -> dict[str, Any]:
    try:
        overlay = parse(path.read_bytes(), path.as_uri())
    except FileNotFoundError:
        raise SpecError("file not found") from None
    if not isinstance(overlay, dict) or not str(overlay.get("overlay", "")).startswith("1.0"):
        raise SpecError("not an Overlay 1.0 document: expected `overlay: 1.0.0` at the top")
    if not isinstance(overlay.get("actions"), list) or not overlay["actions"]:
        raise SpecError("an overlay needs a non-empty `actions` list")
    return overlay


def apply_overlay(spec: Any, overlay: dict[str, Any]) -> tuple[Any, list[str]]:
    """Apply every action to `spec` in place: (the spec, which `$` may replace; the problems found)."""
    problems = []
    for i, action in enumerate(overlay["actions"]):
        name = f"actions[{i}]"
        if isinstance(action, dict) and isinstance(action.get("description"), str):
            name += f" ({action['description']})"
        try:
            spec = _apply(spec, action)
        except SpecError as exc:
            problems.append(f"{name}: {exc}")
    return spec, problems


def _apply(spec: Any, action: Any) -> Any:
    if not isinstance(action, dict):
        raise SpecError("an action must be a mapping")
    unknown = sorted(k for k in action if k not in _ACTION_KEYS and not str(k).startswith("x-"))
    if unknown:
        raise SpecError(f"unknown key(s) {unknown}; an action has target, description, update, remove")
    target = action.get("target")
    if not isinstance(target, str) or not target.startswith("$"):
        raise SpecError("`target` must be a JSONPath starting with `$`")
    remove = action.get("remove") is True
    if not remove and "update" not in action:
        raise SpecError("an action needs `update` or `remove: true`")
    try:
        matches = parse_jsonpath(target).find(spec)
    except (JsonPathLexerError, JsonPathParserError) as exc:
        raise SpecError(f"invalid JSONPath {target!r}: {exc}") from None
    if not matches:
        if action.get("x-mcp-optional") is True:
            return spec
        raise SpecError(f"target {target!r} matches nothing (set `x-mcp-optional: true` if that is expected)")
    # Later matches may sit inside earlier ones, and list indices shift on removal: go backwards.
    for match in reversed(matches):
        parent, key = _location(match)
        if remove:
            if parent is None:
                raise SpecError("the whole document cannot be removed")
            del parent[key]
        elif parent is None:
            spec = _updated(spec, action["update"])
        else:
            parent[key] = _updated(parent[key], action["update"])
    return spec


def _location(match: Any) -> tuple[Any, Any]:
    """(container, key or index) of a match; (None, None) for the document itself."""
    if match.context is None:
        return None, None
    container = match.context.value
    if isinstance(match.path, Fields) and len(match.path.fields) == 1:
        return container, match.path.fields[0]
    if isinstance(match.path, Index) and len(match.path.indices) == 1:
        return container, match.path.indices[0]
    if isinstance(container, list):
        return container, next(i for i, v in enumerate(container) if v is match.value)
    if isinstance(container, dict):
        return container, next(k for k, v in container.items() if v is match.value)
    raise SpecError("cannot locate a matched node")


def _updated(current: Any, update: Any) -> Any:
    if isinstance(current, dict) and isinstance(update, dict):
        for key, value in update.items():
            current[key] = _updated(current[key], value) if key in current else copy.deepcopy(value)
        return current
    if isinstance(current, list):
        current.extend(copy.deepcopy(update) if isinstance(update, list) else [copy.deepcopy(update)])
        return current
    return copy.deepcopy(update)
