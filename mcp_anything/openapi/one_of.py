"""`oneOf` as the spec wrote it: validated exactly, advertised as `anyOf` with titled branches.

Arguments are validated against the spec's `oneOf` (exactly one branch must match), so a
value a strict upstream would refuse for matching two branches is refused here first, with
an error that says why. Tools advertise the same schema with each `oneOf` spelled `anyOf`:
the client libraries measured (docs/openapi.md) either rewrite `oneOf` to `anyOf`
themselves or hand it to a model API that rejects it. Branch titles (the referenced
schema's name) and the discriminator stay, so a caller can still tell the branches apart.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import orjson

MAX_MESSAGE = 160


# Keywords whose values are data, and keywords whose values map names to schemas.
_DATA = frozenset({"enum", "const", "default", "examples", "required", "dependentRequired", "discriminator"})
_NAMED = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs"})


def advertised(schema: Any) -> Any:
    """`schema` with every `oneOf` keyword spelled `anyOf`; unchanged parts are shared, not copied.

    Only keywords are renamed: a property called `oneOf` keeps its name.
    """
    if b'"oneOf"' not in orjson.dumps(schema):  # most schemas: one C-speed scan instead of a walk
        return schema
    return _renamed(schema)


def _renamed(schema: Any) -> Any:
    if isinstance(schema, list):
        items = [_renamed(item) for item in schema]
        return items if any(a is not b for a, b in zip(items, schema, strict=True)) else schema
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DATA:
            out[key] = value
        elif key in _NAMED and isinstance(value, dict):
            named = {name: _renamed(sub) for name, sub in value.items()}
            out[key] = named if any(named[n] is not value[n] for n in value) else value
        else:
            out[key] = _renamed(value)
    if "oneOf" in out:
        branches = out.pop("oneOf")
        if "anyOf" in out:  # both: each must hold
            out["allOf"] = [*out.get("allOf", []), {"anyOf": branches}]
        else:
            out["anyOf"] = branches
        return out
    return out if any(out[k] is not schema[k] for k in schema) else schema


def one_of_problem(where: str, node: dict[str, Any], error: jsonschema_rs.ValidationError) -> str:
    """Why `error.instance` does not match exactly one branch of `node["oneOf"]`, and what would."""
    branches = node["oneOf"]
    names = [_name(branch, i) for i, branch in enumerate(branches)]
    instance = error.instance
    prop = _discriminator(node)
    selecting = {i: _selecting_values(branch, prop) for i, branch in enumerate(branches)} if prop else {}
    choices = ", ".join(f"{_text(v)} ({names[i]})" for i, values in selecting.items() for v in values)
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.OneOfMultipleValid):
        matching = [i for i, branch in enumerate(branches) if jsonschema_rs.validator_for(branch).is_valid(instance)]
        listed = ", ".join(names[i] for i in matching)
        hint = (
            f"set {prop!r} to select one: {choices}"
            if choices
            else _ways_to_choose(branches, matching, names, instance)
        )
        count = f"{len(matching)} of the oneOf branches ({listed})"
        return f"argument {where!r} matches {count}; exactly one must match: {hint}"
    depth = len(list(error.instance_path))
    # OneOfNotValid carries each branch's errors (the stubs do not declare it)
    reasons = [_first(context, depth) for context in getattr(error.kind, "context", [])]
    if choices and isinstance(instance, dict):
        if prop not in instance:
            return f"argument {where!r}: missing {prop!r}, which selects the oneOf branch: {choices}"
        chosen = [i for i, values in selecting.items() if instance[prop] in values]
        if not chosen:
            return f"argument {where!r}: {prop} {_text(instance[prop])} selects no oneOf branch; expected {choices}"
        if len(chosen) == 1 and chosen[0] < len(reasons):
            i = chosen[0]
            selects = f"{prop} {_text(instance[prop])} selects {names[i]}"
            return f"argument {where!r}: {selects}, which it does not match: {reasons[i]}"
    why = "; ".join(f"{names[i]}: {reason}" for i, reason in enumerate(reasons))
    return f"argument {where!r} matches none of the oneOf branches ({', '.join(names)}); exactly one must match. {why}"


def _name(branch: Any, index: int) -> str:
    title = branch.get("title") if isinstance(branch, dict) else None
    return str(title) if title else f"branch {index + 1}"


def _discriminator(node: dict[str, Any]) -> str | None:
    discriminator = node.get("discriminator")
    prop = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
    return prop if isinstance(prop, str) else None


def _selecting_values(branch: Any, prop: str | None) -> list[Any]:
    """The discriminator values pinned on a branch (see `schemas`), in either of the shapes pinning makes."""
    if not isinstance(branch, dict) or prop is None:
        return []
    for part in [branch, *(branch.get("allOf") or [])]:
        pinned = part.get("properties", {}).get(prop) if isinstance(part, dict) else None
        if isinstance(pinned, dict) and isinstance(pinned.get("enum"), list):
            return list(pinned["enum"])
    return []


def _ways_to_choose(branches: list[Any], matching: list[int], names: list[str], instance: Any) -> str:
    """For each matching branch, a change of properties that rules out every other matching branch, if any.

    Another branch is ruled out by leaving out a property it requires (and this one does not), or by
    adding a property this one accepts and the other, closed (`additionalProperties: false`), does not declare.
    """
    given = set(instance) if isinstance(instance, dict) else set()
    hints = []
    for i in matching:
        leave_out: set[str] = set()
        add: set[str] = set()
        for j in matching:
            if j == i:
                continue
            drops = sorted((_required(branches[j]) - _required(branches[i])) & given)
            adds = sorted(_declared(branches[i]) - _declared(branches[j])) if _closed(branches[j]) else []
            if not adds and _closed(branches[j]) and not _closed(branches[i]):
                adds = [f"a property {names[j]} does not declare"]
            if not drops and not adds:
                break
            if drops:
                leave_out.add(drops[0])
            else:
                add.add(adds[0])
        else:
            changes = [f"leave out {', '.join(sorted(leave_out))}"] if leave_out else []
            changes += [f"add {', '.join(sorted(add))}"] if add else []
            hints.append(f"for {names[i]}, {' and '.join(changes)}")
    if not hints:
        return "the branches overlap: no change of properties makes it match exactly one"
    return "; ".join(hints)


def _required(branch: Any) -> set[str]:
    return set(branch.get("required", [])) if isinstance(branch, dict) else set()


def _declared(branch: Any) -> set[str]:
    return set(branch.get("properties", {})) if isinstance(branch, dict) else set()


def _closed(branch: Any) -> bool:
    return isinstance(branch, dict) and branch.get("additionalProperties") is False


def _first(errors: list[Any], depth: int) -> str:
    """The first error of a branch, its path relative to the value the `oneOf` applies to."""
    if not errors:
        return "does not match"
    error = errors[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in list(error.instance_path)[depth:])
    message = error.message.replace('"', "'")
    message = message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."
    return f"{path.lstrip('.')}: {message}" if path else message


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()
