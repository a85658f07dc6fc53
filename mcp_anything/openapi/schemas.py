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
merged into one object (otherwise kept), `anyOf` and `discriminator` are kept. `oneOf` is
kept in input schemas (the gateway validates arguments with its real semantics, see
`validation`), each referenced branch titled with its schema's name; in output schemas it
is checked as `anyOf` (a result matching two overlapping branches is still a result). In
input schemas, each referenced alternative of a discriminated `oneOf`/`anyOf` gets its
discriminator property required and pinned to the values (mapping keys, else the
schema's name) that select it.
`readOnly` properties are left out of input schemas; `writeOnly` ones stay in output
schemas but are never required there. Vendor extensions and documentation-only keywords are dropped.

Whatever conversion loosens (a cut, a dropped keyword) or finds unsatisfiable is a `Note`
(see `findings`), remembered with the converted reference so every tool using it reports it.

Converted schemas are shared between tools: never mutate one, copy it.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import jsonschema_rs
import orjson

from mcp_anything.openapi.all_of import ANNOTATIONS, check_all_of, merge_all_of
from mcp_anything.openapi.documents import Documents, SpecError
from mcp_anything.openapi.findings import SCHEMA_LOOSENED, SCHEMA_UNSATISFIABLE, Note
from mcp_anything.openapi.keywords import SUBSCHEMA_LISTS, SUBSCHEMA_MAPS, SUBSCHEMA_VALUES
from mcp_anything.openapi.references import ReferenceGraph

INPUT = "input"
OUTPUT = "output"
RECURSION_DEPTH = 2
MAX_INLINE_NODES = 4000

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
# Assertions of older drafts (or dynamic references) that have no 2020-12 equivalent here: dropped, and said so.
_DROPPED_ASSERTIONS = frozenset({"additionalItems", "dependencies", "$dynamicRef", "$recursiveRef"})


class Schemas:
    """Converts the schemas of one spec, memoizing every referenced schema."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self._memo: dict[tuple[str, str, int], tuple[Any, int, tuple[Note, ...]]] = {}
        self._resolve = documents.resolve
        self._graph = ReferenceGraph(self._resolve)

    def convert(self, node: Any, base: str, mode: str, notes: list[Note], where: str) -> Any:
        """A JSON Schema for the OpenAPI schema `node` found in the document at `base`.

        What had to be loosened is added to `notes`, naming the schema (`where` unless it is a reference).
        """
        return self._convert(node, base, mode, RECURSION_DEPTH, notes, where)[0]

    # --- conversion ----------------------------------------------------------------

    def _convert(self, node: Any, base: str, mode: str, budget: int, notes: list[Note], where: str) -> tuple[Any, int]:
        """`where` names the schema for notes: the innermost referenced schema, else the caller's `where`."""
        if isinstance(node, bool):
            return node, 1
        if not isinstance(node, dict):
            raise SpecError(f"a schema must be an object, got {type(node).__name__}")
        if "$ref" in node:
            target, size = self._reference(node["$ref"], base, mode, budget, notes)
            if len(node) == 1:
                return target, size
            siblings, extra = self._convert(
                {k: v for k, v in node.items() if k != "$ref"}, base, mode, budget, notes, where
            )
            merged = _with_siblings(target, siblings)
            check_all_of(merged, notes, where)
            return merged, size + extra

        out: dict[str, Any] = {}
        size = 1
        for key, value in node.items():
            if key in SUBSCHEMA_MAPS:
                if isinstance(value, dict):
                    converted = {}
                    for name, sub in value.items():
                        converted[name], n = self._convert(sub, base, mode, budget, notes, where)
                        size += n
                    out[key] = converted
            elif key in SUBSCHEMA_VALUES:
                if isinstance(value, dict | bool):
                    out[key], n = self._convert(value, base, mode, budget, notes, where)
                    size += n
            elif key in SUBSCHEMA_LISTS:
                if isinstance(value, list):
                    items = []
                    for sub in value:
                        item, n = self._convert(sub, base, mode, budget, notes, where)
                        items.append(self._titled(item, sub, base) if key == "oneOf" and mode == INPUT else item)
                        size += n
                    out[self._list_keyword(key, node, mode, notes, where)] = items
                    if (
                        key == "oneOf"
                        and mode == INPUT
                        and len({orjson.dumps(i, option=_SORTED) for i in items}) < len(items)
                    ):
                        notes.append(
                            Note(
                                SCHEMA_UNSATISFIABLE,
                                f"{where}: oneOf lists the same branch twice; a value matching it matches both",
                                True,
                            )
                        )
            elif key == "items":
                if isinstance(value, list):  # draft-4 tuple form
                    out["prefixItems"] = [self._convert(v, base, mode, budget, notes, where)[0] for v in value]
                elif isinstance(value, dict | bool):
                    out["items"], n = self._convert(value, base, mode, budget, notes, where)
                    size += n
            elif key == "type":
                _set_type(out, value, notes, where)
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
                else:
                    notes.append(
                        Note(
                            SCHEMA_LOOSENED,
                            f"{where}: pattern {value!r} is not a regex the validator reads; not checked",
                        )
                    )
            elif key in _KEPT:
                out[key] = value
            elif key in _DROPPED_ASSERTIONS:
                notes.append(
                    Note(SCHEMA_LOOSENED, f"{where}: {key!r} has no JSON Schema 2020-12 equivalent here; not checked")
                )
        _exclusive_bounds(node, out)
        _drop_properties(out, mode)
        if "allOf" in out:
            out = merge_all_of(out)
            check_all_of(out, notes, where)
        if mode == INPUT and isinstance(node.get("discriminator"), dict):
            self._discriminate(node, out, base)
        if node.get("nullable") is True:
            out = _nullable(out)
        return out, size

    def _titled(self, branch: Any, raw: Any, base: str) -> Any:
        """A referenced `oneOf` branch named after its schema, so errors (and callers) can tell branches apart."""
        if not isinstance(branch, dict) or "title" in branch or not isinstance(raw, dict) or "$ref" not in raw:
            return branch
        return {"title": schema_name(self._resolve(raw["$ref"], base)[2]), **branch}

    @staticmethod
    def _list_keyword(key: str, node: dict[str, Any], mode: str, notes: list[Note], where: str) -> str:
        """Inputs keep `oneOf`; outputs check it as `anyOf`, so a result matching two branches is not refused."""
        if key != "oneOf" or mode == INPUT or "anyOf" in node:
            return key
        notes.append(Note(SCHEMA_LOOSENED, f"{where}: oneOf in a result is checked as anyOf"))
        return "anyOf"

    def _discriminate(self, node: dict[str, Any], out: dict[str, Any], base: str) -> None:
        """Pin the discriminator property in each referenced alternative to the values that select it.

        Alternatives then no longer overlap, and a caller sees which value picks which shape.
        Only for inputs: an upstream answering with an unmapped value must not fail validation.
        """
        discriminator = node["discriminator"]
        prop = discriminator.get("propertyName")
        key = "oneOf" if isinstance(node.get("oneOf"), list) else "anyOf"
        raw, converted = node.get(key), out.get(key)
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
            pinned.append(_pin(alternative, prop, values_by_target.get(target) or [schema_name(target)]))
        out[key] = pinned

    def _reference(self, ref: str, base: str, mode: str, budget: int, notes: list[Note]) -> tuple[Any, int]:
        node, doc, key = self._resolve(ref, base)
        name = self._display(key)
        if self._graph.is_recursive(key):
            if budget == 0:
                notes.append(
                    Note(
                        SCHEMA_LOOSENED,
                        f"{name} is recursive: expanded {RECURSION_DEPTH} levels deep, then not checked",
                    )
                )
                return _cut(node, key, "recursive structure, not expanded further"), 1
            budget -= 1
        memo_key = (key, mode, budget)
        hit = self._memo.get(memo_key)
        if hit is None:
            found: list[Note] = []
            schema, size = self._convert(node, doc, mode, budget, found, name)
            if size > MAX_INLINE_NODES:
                found = [Note(SCHEMA_LOOSENED, f"{name} is too large to inline ({size} nodes); not checked")]
                schema, size = _cut(node, key, "too large to inline"), 1
            hit = self._memo[memo_key] = (schema, size, tuple(dict.fromkeys(found)))
        notes.extend(hit[2])
        return hit[0], hit[1]

    def _display(self, key: str) -> str:
        """`#/components/schemas/Pet` in the root document, `pet.yaml#/Pet` in another."""
        uri, fragment = key.split("#", 1)
        return f"#{fragment}" if uri == self.documents.root_uri else f"{uri.rsplit('/', 1)[-1]}#{fragment}"


def schema_name(key: str) -> str:
    """A referenced schema's name: its pointer's last token (`Pet`), or the file's stem for a whole file (`pet`)."""
    uri, fragment = key.split("#", 1)
    if fragment.strip("/"):
        return fragment.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
    return uri.rsplit("/", 1)[-1].split(".", 1)[0]


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


def _set_type(out: dict[str, Any], value: Any, notes: list[Note], where: str) -> None:
    if isinstance(value, str) and value in _JSON_TYPES:
        out["type"] = value
        return
    if value == "file":  # Swagger 2.0
        out["type"] = "string"
        out.setdefault("format", "binary")
        return
    types = [t for t in (value if isinstance(value, list) else [value]) if isinstance(t, str) and t in _JSON_TYPES]
    if len(types) != (len(value) if isinstance(value, list) else 1):
        notes.append(Note(SCHEMA_LOOSENED, f"{where}: type {value!r} is not a JSON Schema type; not checked"))
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
    if set(siblings) <= ANNOTATIONS | {"readOnly", "writeOnly"}:
        return {**target, **siblings}
    return merge_all_of({"allOf": [target, siblings]})


_SORTED = orjson.OPT_SORT_KEYS


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
    name = schema_name(key)
    cut: dict[str, Any] = {"description": f"{name}: {why}."}
    if isinstance(node, dict) and isinstance(node.get("type"), str) and node["type"] in _JSON_TYPES:
        cut["type"] = node["type"]
        if node.get("nullable") is True:
            cut["type"] = [node["type"], "null"]
    return cut
