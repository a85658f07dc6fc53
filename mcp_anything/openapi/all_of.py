"""`allOf` in converted schemas: merging plain object parts into one schema, and spotting parts whose
types exclude each other (no value can match: a finding)."""

from __future__ import annotations

from typing import Any

from mcp_anything.openapi.findings import SCHEMA_UNSATISFIABLE, Note

# allOf parts made only of these keywords can be merged into one schema.
_MERGEABLE = frozenset({"type", "properties", "required", "additionalProperties", "description", "title"}) | {
    "discriminator",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "default",
}
# Keywords that only describe: two parts may disagree on them and still merge.
ANNOTATIONS = frozenset({"description", "title", "examples", "deprecated", "default", "discriminator"})


def check_all_of(out: Any, notes: list[Note], where: str) -> None:
    """An `allOf` (left after merging) whose parts' types have nothing in common: no value can match."""
    if not isinstance(out, dict) or not isinstance(out.get("allOf"), list):
        return
    common: set[str] | None = None
    for part in [out, *out["allOf"]]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind is None:
            continue
        kinds = set(kind if isinstance(kind, list) else [kind])
        if "number" in kinds:
            kinds.add("integer")  # every integer is a number
        common = kinds if common is None else common & kinds
    if common is not None and not common:
        notes.append(
            Note(SCHEMA_UNSATISFIABLE, f"{where}: allOf requires types that exclude each other; no value matches", True)
        )


def merge_all_of(out: dict[str, Any]) -> dict[str, Any]:
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
            elif merged[key] != value and key not in ANNOTATIONS:
                return out  # conflicting constraints (two types, two additionalProperties): keep allOf
    if "properties" in merged and "required" in merged:
        # a part's readOnly/writeOnly property was left out: it cannot be required either
        merged["required"] = [r for r in merged["required"] if r in merged["properties"]]
    return merged
