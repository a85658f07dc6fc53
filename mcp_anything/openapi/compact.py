"""Each tool's `tools/list` entry fitted to its upstream's budget, once at load.

Real specs give entries of tens of kilobytes (one shared response model inlined into every
operation). An upstream's `max_description_chars` bounds the tool's description (HTML turned
into Markdown, see `markup.py`) and each argument's, and `max_tool_bytes` the serialised entry.
Over the budget, the advertised copy is cut step by step until it fits:

1. `examples` are dropped everywhere, then the descriptions and titles of nested properties
   (below the arguments, and all of the outputSchema's) are shortened, then removed;
2. the outputSchema is loosened: its subschemas from depth 3, then 2, then 1 collapse to
   their `type` (a looser schema still accepts every result the full one accepts);
3. the outputSchema is left out;
4. the arguments' own descriptions are shortened to their first sentence.

The advertised inputSchema always keeps every property and every validation keyword, so an
entry stays over budget only when its input schema alone is; `Tool.fit` says so. Argument
validation and output checking use the tool's full schemas, never this copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from mcp_anything.openapi.markup import markdown
from mcp_anything.tools import DefinitionFit, Tool

NESTED_CHARS = 80  # a nested description or title shortened in step 1
ARGUMENT_CHARS = 160  # an argument's description shortened in step 4
COLLAPSE_DEPTHS = (3, 2, 1)
_DOCS = ("description", "title")
_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs")
_VALUES = (
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
)
_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_BRANCHES = ("allOf", "anyOf", "oneOf")  # alternatives of the same value: not a level deeper

Rewrite = Callable[[dict[str, Any], int], dict[str, Any]]


def fit_tool(tool: Tool, max_bytes: int, max_description_chars: int) -> None:
    """Replace `tool.definition` by its fitted copy and record how it was fitted in `tool.fit`.

    `tool.description` keeps the whole text, as Markdown: search reads all of it.
    """
    tool.description = markdown(tool.description)
    tool.definition, tool.fit = fit_definition(tool.definition, max_bytes, max_description_chars)


def fit_definition(
    definition: dict[str, Any], max_bytes: int, max_description_chars: int
) -> tuple[dict[str, Any], DefinitionFit]:
    """A copy of `definition` within `max_bytes` when its input schema allows; `definition` is not modified."""
    trimmed: list[str] = []
    entry = dict(definition)
    description = markdown(str(entry.get("description", "")))
    entry["description"] = shorten(description, max_description_chars)
    if entry["description"] != description:
        trimmed.append(f"description cut to {max_description_chars} characters")
    cut: list[str] = []

    def argument_text(text: str) -> str:
        converted = markdown(text)
        short = shorten(converted, max_description_chars)
        if short != converted:
            cut.append(text)
        return short

    entry["inputSchema"] = _rewrite_arguments(entry["inputSchema"], argument_text)
    if cut:
        trimmed.append(f"{len(cut)} argument description(s) cut to {max_description_chars} characters")
    size = _size(entry)
    output = entry.get("outputSchema")

    steps: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("examples", lambda e: _rewrite_both(e, _without_examples)),
        ("nested descriptions shortened", lambda e: _rewrite_both(e, _nested_docs(_first_sentence))),
        ("nested descriptions removed", lambda e: _rewrite_both(e, _nested_docs(lambda _text: None))),
    ]
    for depth in COLLAPSE_DEPTHS:
        steps.append((f"outputSchema collapsed to types from depth {depth}", _collapse_output(depth)))
    steps.append(("outputSchema", lambda e: e.pop("outputSchema", None)))
    steps.append(("argument descriptions shortened", _shorten_arguments))
    for label, step in steps:
        if size <= max_bytes:
            break
        if label.startswith("outputSchema") and output is None:
            continue
        before = size
        step(entry)
        size = _size(entry)
        if size < before:
            trimmed.append(label)
    return entry, DefinitionFit(size, max_bytes, tuple(trimmed))


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, an ellipsis marking the cut."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _size(entry: dict[str, Any]) -> int:
    return len(orjson.dumps(entry))


def _first_sentence(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    end = line.find(". ")
    return shorten(line[: end + 1] if end > 0 else line, NESTED_CHARS)


# --- rewriting schemas: copies, never the shared originals ---------------------------------


def _rewrite(schema: Any, rewrite: Rewrite, depth: int = 0) -> Any:
    """`schema` with `rewrite(node, depth)` applied to every subschema, top down; unchanged parts are shared."""
    if not isinstance(schema, dict):
        return schema
    node = rewrite(schema, depth)
    out: dict[str, Any] | None = None
    for key, value in node.items():
        new: Any = value
        if key in _MAPS and isinstance(value, dict):
            subs = {name: _rewrite(sub, rewrite, depth + 1) for name, sub in value.items()}
            new = value if all(subs[name] is value[name] for name in value) else subs
        elif key in _VALUES and isinstance(value, dict):
            new = _rewrite(value, rewrite, depth + 1)
        elif (key in _LISTS or key == "items") and isinstance(value, list):
            step = 0 if key in _BRANCHES else 1
            branches = [_rewrite(sub, rewrite, depth + step) for sub in value]
            new = value if all(a is b for a, b in zip(branches, value, strict=True)) else branches
        if new is not value:
            out = out if out is not None else dict(node)
            out[key] = new
    return out if out is not None else node


def _rewrite_both(entry: dict[str, Any], rewrite: Rewrite) -> None:
    entry["inputSchema"] = _rewrite(entry["inputSchema"], rewrite)
    if "outputSchema" in entry:
        entry["outputSchema"] = _rewrite(entry["outputSchema"], _as_output(rewrite))


def _as_output(rewrite: Rewrite) -> Rewrite:
    """Every level of an outputSchema counts as nested: its top-level properties are not arguments."""
    return lambda node, depth: rewrite(node, depth + 2)


def _without_examples(node: dict[str, Any], depth: int) -> dict[str, Any]:
    if "examples" not in node and "example" not in node:
        return node
    return {k: v for k, v in node.items() if k not in ("examples", "example")}


def _nested_docs(change: Callable[[str], str | None]) -> Rewrite:
    """Apply `change` to the descriptions and titles below the arguments (depth 2: a property of an argument)."""

    def rewrite(node: dict[str, Any], depth: int) -> dict[str, Any]:
        if depth < 2 or not any(isinstance(node.get(k), str) for k in _DOCS):
            return node
        out = dict(node)
        for key in _DOCS:
            if isinstance(out.get(key), str):
                changed = change(out[key])
                if changed is None:
                    del out[key]
                else:
                    out[key] = changed
        return out

    return rewrite


def _collapse_output(depth: int) -> Callable[[dict[str, Any]], None]:
    def collapse(node: dict[str, Any], at: int) -> dict[str, Any]:
        if at < depth:
            return node
        return {"type": node["type"]} if "type" in node else {}

    def step(entry: dict[str, Any]) -> None:
        entry["outputSchema"] = _rewrite(entry["outputSchema"], collapse)

    return step


def _rewrite_arguments(schema: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    """The input schema with `change` applied to each argument's own description (a copy when any changes)."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema
    changed: dict[str, Any] = {}
    for name, sub in properties.items():
        if isinstance(sub, dict) and isinstance(sub.get("description"), str):
            text = change(sub["description"])
            if text != sub["description"]:
                changed[name] = {**sub, "description": text}
    if not changed:
        return schema
    return {**schema, "properties": {**properties, **changed}}


def _shorten_arguments(entry: dict[str, Any]) -> None:
    entry["inputSchema"] = _rewrite_arguments(entry["inputSchema"], lambda text: shorten(text, ARGUMENT_CHARS))
