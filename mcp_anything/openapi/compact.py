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

Specs share subschemas between operations, so each rewrite is memoized per subschema (and the depth
it is met at, as far as the rewrite cares) across the tools of one load: a `DefinitionFitter` per
upstream load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from mcp_anything.openapi.keywords import SUBSCHEMA_LISTS, SUBSCHEMA_MAPS, SUBSCHEMA_VALUES
from mcp_anything.openapi.markup import markdown
from mcp_anything.tools import DefinitionFit, Tool

NESTED_CHARS = 80  # a nested description or title shortened in step 1
ARGUMENT_CHARS = 160  # an argument's description shortened in step 4
COLLAPSE_DEPTHS = (3, 2, 1)
_DOCS = ("description", "title")
_MAPS = (*SUBSCHEMA_MAPS, "$defs")
_VALUES = ("items", *SUBSCHEMA_VALUES)
_BRANCHES = ("allOf", "anyOf", "oneOf")  # alternatives of the same value: not a level deeper
_NESTED = 2  # depth of an argument's own properties, in an input schema
_INVERTED = ("not", "if", "then", "else")  # subschemas a looser copy of cannot stand in for

Change = Callable[[dict[str, Any], int], dict[str, Any]]


class _Pass:
    """One rewrite of schemas, top down, applying `change(node, depth)` to every subschema; copies, never
    the shared originals, and unchanged parts stay shared. `change` must depend on the depth only up to
    `deepest`: results are memoized per (subschema, depth capped there)."""

    def __init__(self, change: Change, deepest: int) -> None:
        self._change = change
        self._deepest = deepest
        # id -> (the subschema, kept alive so its id is not reused; its rewrite)
        self._memo: dict[tuple[int, int], tuple[Any, Any]] = {}

    def __call__(self, schema: Any, depth: int = 0) -> Any:
        if not isinstance(schema, dict):
            return schema
        key = (id(schema), min(depth, self._deepest))
        hit = self._memo.get(key)
        if hit is not None:
            return hit[1]
        node = self._change(schema, depth)
        out: dict[str, Any] | None = None if node is schema else node
        for name, value in node.items():
            new: Any = value
            if name in _MAPS and isinstance(value, dict):
                subs = {k: self(sub, depth + 1) for k, sub in value.items()}
                new = value if all(subs[k] is value[k] for k in value) else subs
            elif name in _VALUES and isinstance(value, dict):
                new = self(value, depth + 1)
            elif (name in SUBSCHEMA_LISTS or name == "items") and isinstance(value, list):
                step = 0 if name in _BRANCHES else 1
                branches = [self(sub, depth + step) for sub in value]
                new = value if all(a is b for a, b in zip(branches, value, strict=True)) else branches
            if new is not value:
                out = out if out is not None else dict(node)
                out[name] = new
        result = out if out is not None else schema
        self._memo[key] = (schema, result)
        return result


class DefinitionFitter:
    """Fits the definitions of one upstream's tools to its budget; one per load (its memos die with it)."""

    def __init__(self, max_bytes: int, max_description_chars: int) -> None:
        self.max_bytes = max_bytes
        self.max_description_chars = max_description_chars
        self._without_examples = _Pass(_without_examples, 0)
        self._shortened = _Pass(_nested_docs(_first_sentence), _NESTED)
        self._undocumented = _Pass(_nested_docs(lambda _text: None), _NESTED)
        self._collapsed = {depth: _Pass(_collapse(depth), depth) for depth in COLLAPSE_DEPTHS}

    def fit_tool(self, tool: Tool) -> None:
        """Replace `tool.definition` by its fitted copy and record how it was fitted in `tool.fit`.

        `tool.description` keeps the whole text, as Markdown: search reads all of it.
        """
        tool.description = markdown(tool.description)
        tool.definition, tool.fit = self.fit(tool.definition)

    def fit(self, definition: dict[str, Any]) -> tuple[dict[str, Any], DefinitionFit]:
        """A copy of `definition` within the budget when its input schema allows; `definition` is not modified."""
        limit = self.max_description_chars
        trimmed: list[str] = []
        entry = dict(definition)
        description = markdown(str(entry.get("description", "")))
        entry["description"] = shorten(description, limit)
        if entry["description"] != description:
            trimmed.append(f"description cut to {limit} characters")
        cut: list[str] = []

        def argument_text(text: str) -> str:
            converted = markdown(text)
            short = shorten(converted, limit)
            if short != converted:
                cut.append(text)
            return short

        entry["inputSchema"] = _rewrite_arguments(entry["inputSchema"], argument_text)
        if cut:
            trimmed.append(f"{len(cut)} argument description(s) cut to {limit} characters")
        size = _size(entry)
        has_output = "outputSchema" in entry
        steps: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
            ("examples", lambda e: _both(e, self._without_examples)),
            ("nested descriptions shortened", lambda e: _both(e, self._shortened)),
            ("nested descriptions removed", lambda e: _both(e, self._undocumented)),
        ]
        for depth, collapse in self._collapsed.items():
            steps.append((f"outputSchema collapsed to types from depth {depth}", _output_step(collapse)))
        steps.append(("outputSchema", lambda e: e.pop("outputSchema", None)))
        steps.append(("argument descriptions shortened", _shorten_arguments))
        for label, step in steps:
            if size <= self.max_bytes:
                break
            if label.startswith("outputSchema") and not has_output:
                continue
            before = size
            step(entry)
            size = _size(entry)
            if size < before:
                trimmed.append(label)
        return entry, DefinitionFit(size, self.max_bytes, tuple(trimmed))


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


def _both(entry: dict[str, Any], rewrite: _Pass) -> None:
    entry["inputSchema"] = rewrite(entry["inputSchema"])
    if "outputSchema" in entry:
        # Every level of an outputSchema counts as nested: its top-level properties are not arguments.
        entry["outputSchema"] = rewrite(entry["outputSchema"], _NESTED)


def _output_step(collapse: _Pass) -> Callable[[dict[str, Any]], None]:
    def step(entry: dict[str, Any]) -> None:
        entry["outputSchema"] = collapse(entry["outputSchema"])

    return step


def _without_examples(node: dict[str, Any], depth: int) -> dict[str, Any]:
    if "examples" not in node and "example" not in node:
        return node
    return {k: v for k, v in node.items() if k not in ("examples", "example")}


def _nested_docs(change: Callable[[str], str | None]) -> Change:
    """Apply `change` to the descriptions and titles below the arguments (a property of an argument)."""

    def rewrite(node: dict[str, Any], depth: int) -> dict[str, Any]:
        if depth < _NESTED or not any(isinstance(node.get(k), str) for k in _DOCS):
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


def _collapse(depth: int) -> Change:
    def collapse(node: dict[str, Any], at: int) -> dict[str, Any]:
        if at >= depth:
            return {"type": node["type"]} if "type" in node else {}
        if at + 1 >= depth and any(key in node for key in _INVERTED):
            # Collapsing these would tighten the schema (`not: {type: object}` refuses every object): drop them.
            return {k: v for k, v in node.items() if k not in _INVERTED}
        return node

    return collapse


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
