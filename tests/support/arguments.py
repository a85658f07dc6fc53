"""Valid tool arguments generated from a tool's input schema (JSON Schema 2020-12), deterministically.

Used by the conformance run: every generated value must satisfy the schema, so a
rejection by the upstream's validator points at request building, not at the data.
`mode` picks which optional properties appear: `minimal` (required only), `full`
(every property) or `random`.
"""

from __future__ import annotations

import base64
import math
import re
import string
import uuid
from random import Random
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import jsonschema_rs

MINIMAL, FULL, RANDOM = "minimal", "full", "random"

_FORMATS: dict[str, Any] = {
    "date-time": lambda r: f"20{r.randint(10, 29)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}T0{r.randint(0, 9)}:15:30Z",
    "date": lambda r: f"20{r.randint(10, 29)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}",
    "time": lambda r: f"0{r.randint(0, 9)}:15:30Z",
    "email": lambda r: f"user{r.randint(1, 999)}@example.com",
    "idn-email": lambda r: f"user{r.randint(1, 999)}@example.com",
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128), version=4)),
    "uri": lambda r: f"https://example.com/item/{r.randint(1, 999)}",
    "url": lambda r: f"https://example.com/item/{r.randint(1, 999)}",
    "iri": lambda r: f"https://example.com/item/{r.randint(1, 999)}",
    "uri-reference": lambda r: f"/item/{r.randint(1, 999)}",
    "hostname": lambda r: f"host{r.randint(1, 99)}.example.com",
    "ipv4": lambda r: f"192.0.2.{r.randint(1, 254)}",
    "ipv6": lambda r: f"2001:db8::{r.randint(1, 999)}",
    "byte": lambda r: base64.b64encode(r.randbytes(6)).decode(),
    "binary": lambda r: "binary-data",
    "password": lambda r: "s3cret-pass",
    "phone-number": lambda r: f"+1555555{r.randint(1000, 9999)}",
    "duration": lambda r: f"PT{r.randint(1, 59)}M",
    "json-pointer": lambda r: f"/items/{r.randint(0, 9)}",
    "relative-json-pointer": lambda r: f"{r.randint(0, 3)}/name",
    "regex": lambda r: "^[a-z]+$",
    "uri-template": lambda r: "https://example.com/items/{id}",
    "iri-reference": lambda r: f"/item/{r.randint(1, 999)}",
    "idn-hostname": lambda r: f"host{r.randint(1, 99)}.example.com",
}


def generate(schema: Any, rng: Random, mode: str = RANDOM) -> Any:
    return generate_noting_omissions(schema, rng, mode)[0]


def generate_noting_omissions(schema: Any, rng: Random, mode: str = RANDOM) -> tuple[Any, list[str]]:
    """A value, and the optional properties left out because no valid value of theirs was found.

    Such a property is typically unsatisfiable (`allOf` of a string and an integer), or an
    exclusive choice (`oneOf`) whose alternatives cannot be told apart: every value matching
    one matches another. A careful caller leaves it out.
    """
    generator = _Generator(rng, mode)
    return generator.value(schema), generator.omitted


class _Generator:
    def __init__(self, rng: Random, mode: str) -> None:
        self.rng = rng
        self.mode = mode
        self.omitted: list[str] = []
        self._inexclusive = False  # set when `_alternative` found no value matching exactly one alternative

    def value(self, schema: Any, depth: int = 0) -> Any:
        if schema is True or not isinstance(schema, dict):
            return "value"
        if "const" in schema:
            return schema["const"]
        example = self._example(schema)
        if example is not None:
            return example[0]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            choices = [v for v in schema["enum"] if v is not None and _fits(v, schema.get("type"))]
            return self.rng.choice(choices or schema["enum"])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self._alternative(schema, key, depth)
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, part)
            return self.value(merged, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        return getattr(self, f"_{kind}")(schema, depth)

    def _example(self, schema: dict[str, Any]) -> tuple[Any] | None:
        """One of the spec's own examples that satisfies the schema (formats included), as a 1-tuple.

        Scalars always prefer one; objects and arrays only in `random` mode, so that `minimal`
        and `full` keep meaning required-only and everything. Not for alternatives: an example
        matching several of them would not say which one it is.
        """
        examples = schema.get("examples")
        if not isinstance(examples, list) or not examples or any(k in schema for k in ("anyOf", "oneOf")):
            return None
        compound = schema.get("type") in ("object", "array") or "properties" in schema or "items" in schema
        if compound and self.mode != RANDOM:
            return None
        valid = [e for e in examples if _validator(schema, formats=True).is_valid(e)]
        return (self.rng.choice(valid),) if valid else None

    def _alternative(self, schema: dict[str, Any], key: str, depth: int) -> Any:
        """A value for one alternative that matches no other one, if such a value exists.

        Gateway schemas say `anyOf` where specs say `oneOf`, and pin a discriminator's value in
        each alternative; the upstream may still want exactly one match of the alternatives as
        the spec wrote them. So exclusivity is judged with the pins removed (`_unpinned`: looser
        than the spec's own alternatives, so a value matching one of those matches one of the
        spec's), and a value that matches others too gets a property they reject (`_exclusive`).
        """
        alternatives = [a for a in schema[key] if not (isinstance(a, dict) and a.get("type") == "null")] or schema[key]
        discriminator = schema.get("discriminator") if isinstance(schema.get("discriminator"), dict) else {}
        prop = discriminator.get("propertyName")
        judges = [_unpinned(a, prop) for a in alternatives] if isinstance(prop, str) else alternatives
        value, fallback = None, None
        for _ in range(12):
            index = self.rng.randrange(len(alternatives))
            merged = self._merged(schema, key, alternatives[index])
            value = self._exclusive(self.value(merged, depth), merged, judges, index, depth)
            if sum(1 for j in judges if _validator(j).is_valid(value)) == 1:
                return value
            if fallback is None and sum(1 for a in alternatives if _validator(a).is_valid(value)) == 1:
                fallback = value
        if fallback is not None:
            return fallback
        self._inexclusive = True
        return value

    def _exclusive(self, value: Any, merged: dict[str, Any], judges: list[Any], index: int, depth: int) -> Any:
        """`value`, changed (still valid for `merged`) so that it fails every other alternative it matched."""
        if not isinstance(value, dict):
            return value
        chosen = _validator(merged)
        own = merged.get("properties") if isinstance(merged.get("properties"), dict) else {}
        for j, judge in enumerate(judges):
            if j == index or not _validator(judge).is_valid(value):
                continue
            properties, required = _shape(judge)
            candidates = [{k: v for k, v in value.items() if k != r} for r in required if r in value]
            for name in properties:
                mine = [self.value(own[name], depth + 1) for _ in range(3)] if name in own else []
                candidates += [{**value, name: c} for c in [*mine, *_CONFLICTS] if c != value.get(name)]
            value = next(
                (c for c in candidates if chosen.is_valid(c) and not _validator(judge).is_valid(c)),
                value,
            )
        return value

    @staticmethod
    def _merged(schema: dict[str, Any], key: str, alternative: Any) -> Any:
        rest = {k: v for k, v in schema.items() if k not in (key, "discriminator")}
        return _merge(rest, alternative) if isinstance(alternative, dict) else alternative

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out = {}
        for name, sub in properties.items():
            wanted = name in required or (
                depth < 4 and (self.mode == FULL or (self.mode == RANDOM and self.rng.random() < 0.5))
            )
            if wanted:
                outer, self._inexclusive = self._inexclusive, False
                out[name] = self.value(sub, depth + 1)
                if name not in required and (self._inexclusive or not _validator(sub).is_valid(out[name])):
                    del out[name]
                    self.omitted.append(name)
                    self._inexclusive = False  # resolved here: the enclosing value is fine without it
                self._inexclusive = self._inexclusive or outer
        for name in required - set(out):
            out[name] = "value"
        for name, sub in properties.items():  # minProperties: add optional properties until there are enough
            if len(out) >= int(schema.get("minProperties", 0)):
                break
            out.setdefault(name, self.value(sub, depth + 1))
        for name, needed in (schema.get("dependentRequired") or {}).items():
            if name in out:
                for other in needed:
                    if other not in out:
                        out[other] = self.value(properties.get(other, {}), depth + 1)
        return out

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", low + 2))
        count = max(low, min(high, low + (0 if depth > 3 else self.rng.randint(1, 2))))
        items = []
        for _ in range(count * 5):
            if len(items) == count:
                break
            item = self.value(schema.get("items", {}), depth + 1)
            if not schema.get("uniqueItems") or item not in items:
                items.append(item)
        return items

    def _string(self, schema: dict[str, Any], depth: int) -> str:
        if schema.get("contentEncoding") == "base64":
            return base64.b64encode(self.rng.randbytes(8)).decode()
        pattern = schema.get("pattern")
        make = _FORMATS.get(str(schema.get("format")))
        if make is not None:  # formats first: a pattern is usually a looser restatement of the format
            value = str(make(self.rng))
            if not isinstance(pattern, str) or re.search(pattern, value):
                return value
        if isinstance(pattern, str):
            return from_regex(pattern, self.rng)
        low = max(1, int(schema.get("minLength", 1)))
        high = max(low, int(schema.get("maxLength", low + 8)))
        length = self.rng.randint(low, min(high, low + 8))
        return "".join(self.rng.choice(string.ascii_lowercase) for _ in range(length))

    def _integer(self, schema: dict[str, Any], depth: int) -> int:
        return int(self._numeric(schema, integer=True))

    def _number(self, schema: dict[str, Any], depth: int) -> float | int:
        return self._numeric(schema, integer=False)

    def _numeric(self, schema: dict[str, Any], integer: bool) -> float | int:
        low, high = _bounds(schema, integer)
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
            first, last = math.ceil(low / step), math.floor(high / step)
            value = self.rng.randint(first, max(first, last)) * step
            return int(value) if isinstance(step, int) else value
        if integer:
            return self.rng.randint(low, high)
        return round(self.rng.uniform(low, high), 2) if high > low else low

    def _boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: dict[str, Any], depth: int) -> None:
        return None


# Values that fail most property schemas in some way (a type, an enum, a format): see `_exclusive`.
_CONFLICTS: list[Any] = ["conformance-other", 0, 1.5, True, None, [], {}]

_VALIDATORS: dict[tuple[int, bool], tuple[Any, Any]] = {}


def _validator(schema: Any, formats: bool = False) -> Any:
    """Compiled once per schema object; the cache keeps the object alive, so its id is never reused."""
    hit = _VALIDATORS.get((id(schema), formats))
    if hit is None:
        hit = _VALIDATORS[(id(schema), formats)] = (
            schema,
            jsonschema_rs.validator_for(schema, validate_formats=formats),
        )
    return hit[1]


def _unpinned(alternative: Any, prop: str) -> Any:
    """`alternative` without the discriminator value the gateway pinned on `prop` (see openapi/schemas.py `_pin`)."""
    if not isinstance(alternative, dict):
        return alternative
    parts = alternative.get("allOf")
    if isinstance(parts, list) and len(parts) == 2 and isinstance(parts[1], dict):
        pin = parts[1]
        if set(pin) == {"properties", "required"} and list(pin["properties"]) == [prop]:
            return _unpinned(parts[0], prop)
    properties = alternative.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get(prop), dict):
        return alternative
    loose = {k: v for k, v in properties[prop].items() if k not in ("enum", "const")}
    return {**alternative, "properties": {**properties, prop: loose}}


def _shape(schema: Any) -> tuple[dict[str, Any], list[str]]:
    """The properties and required names a schema declares, its `allOf` parts included."""
    if not isinstance(schema, dict):
        return {}, []
    properties = dict(schema.get("properties") or {})
    required = list(schema.get("required") or [])
    for part in schema.get("allOf") or []:
        more, needed = _shape(part)
        properties.update(more)
        required += needed
    return properties, required


_PYTHON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": int | float,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _fits(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if not kinds:
        return True
    if isinstance(value, bool):
        return "boolean" in kinds
    return any(isinstance(value, _PYTHON_TYPES[k]) for k in kinds if k in _PYTHON_TYPES)


def _bounds(schema: dict[str, Any], integer: bool) -> tuple[Any, Any]:
    low = schema.get("minimum", 1)
    high = schema.get("maximum", max(low, 0) + 100)
    if "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + (1 if integer else 0.01)
    if "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - (1 if integer else 0.01)
    if integer:
        low, high = int(-(-low // 1)), int(high // 1)
    return low, max(low, high)


def _merge(a: dict[str, Any], b: Any) -> dict[str, Any]:
    if not isinstance(b, dict):
        return a
    merged = {**a, **{k: v for k, v in b.items() if k not in ("properties", "required")}}
    if "properties" in a or "properties" in b:
        merged["properties"] = {**a.get("properties", {}), **b.get("properties", {})}
    if "required" in a or "required" in b:
        merged["required"] = list(dict.fromkeys([*a.get("required", []), *b.get("required", [])]))
    return merged


# --- strings matching a regular expression -----------------------------------------------

_CATEGORIES = {
    sre.CATEGORY_DIGIT: string.digits,
    sre.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre.CATEGORY_SPACE: " ",
    sre.CATEGORY_NOT_DIGIT: string.ascii_letters,
    sre.CATEGORY_NOT_WORD: "-. ",
    sre.CATEGORY_NOT_SPACE: string.ascii_letters,
}
_CATEGORY_SOURCES = {sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_WORD: r"\w", sre.CATEGORY_SPACE: r"\s"}
_PRINTABLE = string.ascii_letters + string.digits + "-_. "


def from_regex(pattern: str, rng: Random) -> str:
    """A string that matches `pattern` (the common subset of ECMA and Python regex)."""
    return _emit(sre_parse.parse(pattern), rng)


def _emit(items: Any, rng: Random) -> str:
    out = []
    for op, argument in items:
        if op is sre.LITERAL:
            out.append(chr(argument))
        elif op is sre.NOT_LITERAL:
            out.append("a" if chr(argument) != "a" else "b")
        elif op is sre.ANY:
            out.append("a")
        elif op is sre.IN:
            out.append(_from_set(argument, rng))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, high, sub = argument
            high = low + 3 if high == sre.MAXREPEAT else high
            out += [_emit(sub, rng) for _ in range(rng.randint(low, min(high, low + 3)))]
        elif op is sre.SUBPATTERN:
            out.append(_emit(argument[-1], rng))
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            out.append(_emit(argument, rng))
        elif op is sre.BRANCH:
            out.append(_emit(rng.choice(argument[1]), rng))
        elif op is sre.CATEGORY:
            out.append(rng.choice(_CATEGORIES.get(argument, "a")))
    return "".join(out)


def _from_set(items: list[tuple[Any, Any]], rng: Random) -> str:
    if items and items[0][0] is sre.NEGATE:
        pattern = re.compile(_set_source(items[1:]))
        return next(c for c in _PRINTABLE if not pattern.match(c))
    op, argument = rng.choice(items)
    if op is sre.LITERAL:
        return chr(argument)
    if op is sre.RANGE:
        return chr(rng.randint(*argument))
    if op is sre.CATEGORY:
        return rng.choice(_CATEGORIES.get(argument, "a"))
    return "a"


def _set_source(items: list[tuple[Any, Any]]) -> str:
    parts = []
    for op, argument in items:
        if op is sre.LITERAL:
            parts.append(re.escape(chr(argument)))
        elif op is sre.RANGE:
            parts.append(f"{re.escape(chr(argument[0]))}-{re.escape(chr(argument[1]))}")
        elif op is sre.CATEGORY:
            parts.append(_CATEGORY_SOURCES.get(argument, ""))
    return "[" + "".join(parts) + "]" if parts else "[^\\s\\S]"
