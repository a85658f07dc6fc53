"""The outputSchema a filtered tool advertises: one that accepts every result its filters can produce.

Clients validate structuredContent against it, so it must only ever be looser than the original.
Field decisions depend on the path alone, so a property whose path a filter keeps stays required;
any other property may disappear (or survive only as a container of what was retained), so it
becomes optional. Below that the walk goes on, since the kept parts may lose their own fields.
Arrays whose elements can go (row operations, dropped scalars) lose minItems. Keywords that a
smaller value can break (`oneOf` exclusivity, `not`, `if`/`then`/`else`, `uniqueItems`, `const`
and `enum` on containers, `dependentRequired`) are dropped or weakened wherever a filter acts.
Removing properties never breaks `additionalProperties: false`, so it stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp_anything.shaping.filters import CompiledFilter, PathState

# Keywords a value with fewer properties or items can fail, whatever the properties are.
_SHRINK_SENSITIVE_OBJECT = ("minProperties", "dependentRequired", "dependencies", "dependentSchemas")
_SHRINK_SENSITIVE_ARRAY = ("minItems", "contains", "minContains", "maxContains", "prefixItems")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def relax_output_schema(schema: dict[str, Any], filters: Sequence[CompiledFilter]) -> dict[str, Any]:
    """The schema of the upstream body (not the `{"result": ...}` wrapper) once `filters` have run.

    A fresh schema when any filter applies; `schema` itself is never modified.
    """
    for compiled in filters:
        relaxed = _relax(schema, compiled, compiled.root())
        schema = relaxed if isinstance(relaxed, dict) else {}
    return schema


def _relax(node: Any, compiled: CompiledFilter, state: PathState | None) -> Any:
    """`state` None: a path the schema cannot name (additionalProperties, patternProperties): anything may go."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        # Output schemas are self-contained except for recursion; a reference's path differs per use.
        return {key: node[key] for key in ("title", "description") if key in node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("not", "if", "then", "else", "uniqueItems"):
            continue
        if key in ("const", "enum") and _has_container(value if key == "enum" else [value]):
            continue
        if key == "oneOf" and isinstance(value, list):
            out["anyOf"] = [_relax(branch, compiled, state) for branch in value]
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_relax(branch, compiled, state) for branch in value]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _relax(sub, compiled, _child(compiled, state, name)) for name, sub in value.items()}
        elif key in ("additionalProperties", "items", "unevaluatedProperties", "unevaluatedItems"):
            # Array elements share their array's path; extra properties have unknown names.
            out[key] = _relax(value, compiled, state if key == "items" else None)
        elif key == "patternProperties" and isinstance(value, dict):
            out[key] = {pattern: _relax(sub, compiled, None) for pattern, sub in value.items()}
        elif key in ("$defs", "definitions"):
            continue
        else:
            out[key] = value
    if isinstance(out.get("required"), list):
        out["required"] = [name for name in out["required"] if _stays(_child(compiled, state, name))]
        if not out["required"]:
            del out["required"]
    if state is None or not state.keep or _may_lose_properties(compiled, state, node):
        for key in _SHRINK_SENSITIVE_OBJECT:
            out.pop(key, None)
    if state is None or state.rows or not state.keep:
        for key in _SHRINK_SENSITIVE_ARRAY:
            out.pop(key, None)
    return out


def _child(compiled: CompiledFilter, state: PathState | None, name: str) -> PathState | None:
    return None if state is None else compiled.child(state, name)


def _stays(state: PathState | None) -> bool:
    return state is not None and state.keep


def _may_lose_properties(compiled: CompiledFilter, state: PathState, node: dict[str, Any]) -> bool:
    properties = node.get("properties")
    names = list(properties) if isinstance(properties, dict) else []
    names += [name for name in node.get("required", ()) if isinstance(name, str)]
    # Properties the schema does not name may be there too, and a filter may remove them.
    if node.get("additionalProperties", True) is not False or "patternProperties" in node:
        return True
    return any(not _stays(compiled.child(state, name)) for name in names)


def _has_container(values: Any) -> bool:
    return isinstance(values, list) and any(isinstance(value, (dict, list)) for value in values)
