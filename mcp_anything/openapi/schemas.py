"""OpenAPI schema objects (2.0, 3.0, 3.1) to self-contained JSON Schema 2020-12.

Tool schemas are self-contained because many MCP clients do not follow `$ref`: every
reference is inlined. Each referenced schema is converted once per (mode, remaining
recursion budget) and the result is shared by every tool that uses it, so building
thousands of tools over the same components stays linear.

Recursion: the reference graph's strongly connected components are computed once
(Tarjan, `references`). Entering a reference that is part of a cycle spends one unit of a budget of
`RECURSION_DEPTH`; when the budget is spent the reference becomes a permissive schema
(only its declared `type`, plus a description saying it was cut). References outside
cycles cost nothing, so ordinary deep nesting is kept whole. A referenced schema
whose expansion would exceed `MAX_INLINE_NODES` nodes is cut the same way, so
pathological specs cannot explode memory or tool definitions.

Dialect: `nullable: true` becomes a type union (or `anyOf` with null), boolean
`exclusiveMinimum`/`exclusiveMaximum` become numbers, `example` becomes `examples`,
Swagger's `type: file` becomes a binary string, `allOf` of plain object schemas is
merged into one object (otherwise kept), `anyOf` and `discriminator` are kept, and
`oneOf` is kept as `anyOf`: specs routinely list overlapping alternatives that only a
discriminator tells apart, and strict `oneOf` would reject every valid value (the
upstream still decides; for outputs, a client would reject valid results). In input
schemas, each referenced alternative of a discriminated `oneOf`/`anyOf` gets its
discriminator property required and pinned to the values (mapping keys, else the
schema's name) that select it.
`readOnly` properties are left out of input schemas; `writeOnly` ones stay in output
schemas but are never required there. Vendor extensions and documentation-only keywords are dropped.

Converted schemas are shared between tools: never mutate one, copy it.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import jsonschema_rs

from mcp_anything.openapi.documents import Documents, SpecError
from mcp_anything.openapi.references import ReferenceGraph

INPUT = "input"
OUTPUT = "output"
RECURSION_DEPTH = 2
MAX_INLINE_NODES = 4000

_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
_SCHEMA_VALUES = (
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
_SCHEMA_LISTS = ("allOf", "oneOf", "anyOf", "prefixItems")
_KEPT = frozenset(
    {
        "enum",
        "const",
        "format",
        "default",
        "title",
        "description",
        "multipleOf",
        "maximum",
        "minimum",
        "maxLength",
        "minLength",
        "maxItems",
        "minItems",
        "uniqueItems",
        "maxContains",
        "minContains",
        "maxProperties",
        "minProperties",
        "dependentRequired",
        "deprecated",
        "readOnly",
        "writeOnly",
        "examples",
        "contentEncoding",
        "contentMediaType",
        "discriminator",
    }
)
_JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
# allOf parts made only of these keywords can be merged into one schema.
_MERGEABLE = frozenset({"type", "properties", "required", "additionalProperties", "description", "title"}) | {
    "discriminator",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "default",
}
_ANNOTATIONS = frozenset({"description", "title", "examples", "deprecated", "default", "discriminator"})


class Schemas:
    """Converts the schemas of one spec, memoizing every referenced schema."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self._memo: dict[tuple[str, str, int], tuple[Any, int]] = {}
        self._resolved: dict[tuple[str, str], tuple[Any, str, str]] = {}
        self._graph = ReferenceGraph(self._resolve)

    def convert(self, node: Any, base: str, mode: str) -> Any:
        """A JSON Schema for the OpenAPI schema `node` found in the document at `base`."""
        return self._convert(node, base, mode, RECURSION_DEPTH)[0]

    def resolve(self, node: Any, base: str) -> tuple[Any, str]:
        """Follow `$ref`s on a non-schema object (parameter, request body, response): (node, its base)."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            node, base, key = self._resolve(node["$ref"], base)
            if key in seen:
                raise SpecError(f"$ref cycle at {key}")
            seen.add(key)
        return node, base

    def _resolve(self, ref: str, base: str) -> tuple[Any, str, str]:
        cache_key = (ref, base)
        hit = self._resolved.get(cache_key)
        if hit is None:
            hit = self._resolved[cache_key] = self.documents.resolve(ref, base)
        return hit

    # --- conversion ----------------------------------------------------------------

    def _convert(self, node: Any, base: str, mode: str, budget: int) -> tuple[Any, int]:
        if isinstance(node, bool):
            return node, 1
        if not isinstance(node, dict):
            raise SpecError(f"a schema must be an object, got {type(node).__name__}")
        if "$ref" in node:
            target, size = self._reference(node["$ref"], base, mode, budget)
            if len(node) == 1:
                return target, size
            siblings, extra = self._convert({k: v for k, v in node.items() if k != "$ref"}, base, mode, budget)
            return _with_siblings(target, siblings), size + extra

        out: dict[str, Any] = {}
        size = 1
        for key, value in node.items():
            if key in _SCHEMA_MAPS:
                if isinstance(value, dict):
                    converted = {}
                    for name, sub in value.items():
                        converted[name], n = self._convert(sub, base, mode, budget)
                        size += n
                    out[key] = converted
            elif key in _SCHEMA_VALUES:
                if isinstance(value, dict | bool):
                    out[key], n = self._convert(value, base, mode, budget)
                    size += n
            elif key in _SCHEMA_LISTS:
                if isinstance(value, list):
                    items = []
                    for sub in value:
                        item, n = self._convert(sub, base, mode, budget)
                        items.append(item)
                        size += n
                    out["anyOf" if key == "oneOf" and "anyOf" not in node else key] = items
            elif key == "items":
                if isinstance(value, list):  # draft-4 tuple form
                    out["prefixItems"] = [self._convert(v, base, mode, budget)[0] for v in value]
                elif isinstance(value, dict | bool):
                    out["items"], n = self._convert(value, base, mode, budget)
                    size += n
            elif key == "type":
                _set_type(out, value)
            elif key == "required":
                if isinstance(value, list):
                    out["required"] = [r for r in value if isinstance(r, str)]
            elif key == "example":
                out.setdefault("examples", [value])
            elif key == "examples":
                if isinstance(value, list):
                    out["examples"] = value
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out[key] = value
            elif key == "pattern":
                if _valid_pattern(value):
                    out[key] = value
            elif key in _KEPT:
                out[key] = value
        _exclusive_bounds(node, out)
        _drop_properties(out, mode)
        if "allOf" in out:
            out = _merge_all_of(out)
        if mode == INPUT and isinstance(node.get("discriminator"), dict):
            self._discriminate(node, out, base)
        if node.get("nullable") is True:
            out = _nullable(out)
        return out, size

    def _discriminate(self, node: dict[str, Any], out: dict[str, Any], base: str) -> None:
        """Pin the discriminator property in each referenced alternative to the values that select it.

        Alternatives then no longer overlap, and a caller sees which value picks which shape.
        Only for inputs: an upstream answering with an unmapped value must not fail validation.
        """
        discriminator = node["discriminator"]
        prop = discriminator.get("propertyName")
        key = "oneOf" if isinstance(node.get("oneOf"), list) else "anyOf"
        raw, converted = node.get(key), out.get("anyOf")
        if not isinstance(prop, str) or not isinstance(raw, list) or not isinstance(converted, list):
            return
        mapping = discriminator.get("mapping") if isinstance(discriminator.get("mapping"), dict) else {}
        values_by_target: dict[str, list[Any]] = {}
        for value, target in mapping.items():
            ref = target if "/" in str(target) or "#" in str(target) else f"#/components/schemas/{target}"
            with contextlib.suppress(SpecError):
                values_by_target.setdefault(self._resolve(ref, base)[2], []).append(value)
        pinned = []
        for original, alternative in zip(raw, converted, strict=True):
            ref = original.get("$ref") if isinstance(original, dict) else None
            if not isinstance(ref, str):
                pinned.append(alternative)
                continue
            target = self._resolve(ref, base)[2]
            pinned.append(_pin(alternative, prop, values_by_target.get(target) or [target.rsplit("/", 1)[-1]]))
        out["anyOf"] = pinned

    def _reference(self, ref: str, base: str, mode: str, budget: int) -> tuple[Any, int]:
        node, doc, key = self._resolve(ref, base)
        if self._graph.is_recursive(key):
            if budget == 0:
                return _cut(node, key, "recursive structure, not expanded further"), 1
            budget -= 1
        memo_key = (key, mode, budget)
        hit = self._memo.get(memo_key)
        if hit is None:
            hit = self._convert(node, doc, mode, budget)
            if hit[1] > MAX_INLINE_NODES:
                hit = (_cut(node, key, "too large to inline"), 1)
            self._memo[memo_key] = hit
        return hit


@functools.cache
def _valid_pattern(pattern: Any) -> bool:
    """Whether the validator accepts the regex; specs carry patterns from other regex dialects."""
    if not isinstance(pattern, str):
        return False
    try:
        jsonschema_rs.validator_for({"pattern": pattern})
    except ValueError:
        return False
    return True


def _set_type(out: dict[str, Any], value: Any) -> None:
    if value == "file":  # Swagger 2.0
        out["type"] = "string"
        out.setdefault("format", "binary")
    elif isinstance(value, str) and value in _JSON_TYPES:
        out["type"] = value
    elif isinstance(value, list):
        types = [t for t in value if t in _JSON_TYPES]
        if types:
            out["type"] = types if len(types) > 1 else types[0]


def _exclusive_bounds(node: dict[str, Any], out: dict[str, Any]) -> None:
    """OpenAPI 3.0's boolean `exclusiveMinimum: true` + `minimum: 5` is 2020-12's `exclusiveMinimum: 5`."""
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(flag) is True and bound in out:
            out[flag] = out.pop(bound)


def _drop_properties(out: dict[str, Any], mode: str) -> None:
    """Inputs lose readOnly properties; outputs keep writeOnly ones, but never require them.

    A writeOnly property is kept in outputs because removing it would make a closed object
    (`additionalProperties: false`) reject responses that include it anyway.
    """
    properties = out.get("properties")
    if not properties:
        return
    marker = "readOnly" if mode == INPUT else "writeOnly"
    marked = [name for name, schema in properties.items() if isinstance(schema, dict) and schema.get(marker) is True]
    if not marked:
        return
    if mode == INPUT:
        out["properties"] = {k: v for k, v in properties.items() if k not in marked}
    if "required" in out:
        out["required"] = [r for r in out["required"] if r not in marked]


def _nullable(out: dict[str, Any]) -> dict[str, Any]:
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list):
        if "null" not in kind:
            out["type"] = [*kind, "null"]
    elif any(k in out for k in ("allOf", "oneOf", "anyOf", "not", "enum", "const")):
        return {"anyOf": [out, {"type": "null"}]}
    else:
        return out
    if isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _with_siblings(target: Any, siblings: Any) -> Any:
    """A `$ref` with sibling keywords: annotations override, anything else must also hold."""
    if not isinstance(target, dict) or not isinstance(siblings, dict) or not siblings:
        return target
    if set(siblings) <= _ANNOTATIONS | {"readOnly", "writeOnly"}:
        return {**target, **siblings}
    return _merge_all_of({"allOf": [target, siblings]})


def _merge_all_of(out: dict[str, Any]) -> dict[str, Any]:
    """Merge `allOf` parts that are plain object schemas into `out`; leave anything else as `allOf`."""
    parts = out["allOf"]
    if not all(isinstance(p, dict) and set(p) <= _MERGEABLE for p in parts):
        return out
    merged = {k: v for k, v in out.items() if k != "allOf"}
    for part in parts:
        for key, value in part.items():
            if key == "properties":
                properties = dict(merged.get("properties", {}))
                for name, schema in value.items():
                    if name in properties and properties[name] != schema:
                        properties[name] = {"allOf": [properties[name], schema]}
                    else:
                        properties[name] = schema
                merged["properties"] = properties
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            elif key not in merged:
                merged[key] = value
            elif merged[key] != value and key not in _ANNOTATIONS:
                return out  # conflicting constraints (two types, two additionalProperties): keep allOf
    if "properties" in merged and "required" in merged:
        # a part's readOnly/writeOnly property was left out: it cannot be required either
        merged["required"] = [r for r in merged["required"] if r in merged["properties"]]
    return merged


def _pin(alternative: Any, prop: str, values: list[Any]) -> Any:
    """`alternative` with `prop` required and limited to `values` (a copy: converted schemas are shared)."""
    if not isinstance(alternative, dict):
        return alternative
    properties = alternative.get("properties")
    if not isinstance(properties, dict) or any(k in alternative for k in ("allOf", "anyOf", "oneOf")):
        return {"allOf": [alternative, {"properties": {prop: {"enum": values}}, "required": [prop]}]}
    current = properties.get(prop)
    narrowed = {**current, "enum": values} if isinstance(current, dict) else {"enum": values}
    narrowed.pop("const", None)
    required = list(dict.fromkeys([*alternative.get("required", []), prop]))
    return {**alternative, "properties": {**properties, prop: narrowed}, "required": required}


def _cut(node: Any, key: str, why: str) -> dict[str, Any]:
    name = key.rsplit("/", 1)[-1]
    cut: dict[str, Any] = {"description": f"{name}: {why}."}
    if isinstance(node, dict) and isinstance(node.get("type"), str) and node["type"] in _JSON_TYPES:
        cut["type"] = node["type"]
        if node.get("nullable") is True:
            cut["type"] = [node["type"], "null"]
    return cut
