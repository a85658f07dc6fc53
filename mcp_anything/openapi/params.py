"""OpenAPI parameter serialization (the `style` / `explode` table of the specification).

Path values are percent-encoded here with no safe characters, item by item, so a value
can never leave its path segment (`../admin`, `a/b`, `x?y=1#z`); delimiters the style
adds (`,` `.` `;` `=`) stay literal. Query values are returned raw, as (name, value)
pairs: the gateway's upstream client percent-encodes each name and value, every
reserved character included, when it builds the URL (form bodies: `urlencode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from mcp_anything.tools import ArgumentError


def primitive(value: Any) -> str:
    """One scalar as OpenAPI writes it: booleans `true`/`false`, null empty, nested values as JSON."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _encode(value: Any) -> str:
    return quote(primitive(value), safe="")


def path_value(name: str, value: Any, style: str, explode: bool) -> str:
    """The encoded text that replaces `{name}` in the path template."""
    if style == "label":
        prefix, separator = ".", "." if explode else ","
    elif style == "matrix":
        return _matrix(name, value, explode)
    else:  # simple
        prefix, separator = "", ","
    if isinstance(value, list):
        return prefix + separator.join(_encode(v) for v in value)
    if isinstance(value, dict):
        if explode:
            return prefix + separator.join(f"{_encode(k)}={_encode(v)}" for k, v in value.items())
        return prefix + ",".join(f"{_encode(k)},{_encode(v)}" for k, v in value.items())
    return prefix + _encode(value)


def _matrix(name: str, value: Any, explode: bool) -> str:
    key = quote(name, safe="")
    if isinstance(value, list):
        if explode:
            return "".join(f";{key}={_encode(v)}" for v in value)
        return f";{key}=" + ",".join(_encode(v) for v in value)
    if isinstance(value, dict):
        if explode:
            return "".join(f";{_encode(k)}={_encode(v)}" for k, v in value.items())
        return f";{key}=" + ",".join(f"{_encode(k)},{_encode(v)}" for k, v in value.items())
    return f";{key}={_encode(value)}" if value != "" else f";{key}"


@dataclass(frozen=True, slots=True)
class ObjectKeys:
    """Which keys of an object-typed query value may reach the upstream.

    An exploded `form` object turns its keys into query names, so without this a caller could add
    any query parameter: a flag the spec never offers, or a second copy of the credential in
    another case. Undeclared keys are left out unless the schema allows additional properties;
    even then a key naming the credential or another parameter (in any case) is refused.
    """

    declared: frozenset[str]
    extra_allowed: bool
    # Lower-cased query names no key may take: the credential's always, declared parameters' for extra keys.
    credential: frozenset[str]
    parameters: frozenset[str]

    @classmethod
    def of(cls, schema: Any, credential: frozenset[str], parameters: frozenset[str]) -> ObjectKeys:
        declared = schema.get("properties") if isinstance(schema, dict) else None
        declared = declared if isinstance(declared, dict) else {}
        extra = schema.get("additionalProperties", not declared) if isinstance(schema, dict) else True
        return cls(frozenset(declared), extra is not False, credential, parameters)

    def select(self, argument: str, value: Mapping[str, Any], as_names: bool) -> dict[str, Any]:
        """The keys of `value` to send; `as_names`: they become query names (exploded `form`)."""
        kept: dict[str, Any] = {}
        for key, item in value.items():
            known = key in self.declared
            if not known and not self.extra_allowed:
                continue
            if as_names:
                lowered = key.lower()
                if lowered in self.credential or (not known and lowered in self.parameters):
                    raise ArgumentError(f"argument {argument!r}: key {key!r} names another query parameter")
            kept[key] = item
        return kept


_DELIMITERS = {"form": ",", "spaceDelimited": " ", "pipeDelimited": "|"}


def query_pairs(name: str, value: Any, style: str, explode: bool) -> list[tuple[str, str]]:
    """Raw (name, value) pairs for one query parameter (or one form-urlencoded property)."""
    if value is None:
        return []
    if style == "deepObject" and isinstance(value, dict):
        return _deep_object(name, value)
    if isinstance(value, list):
        if explode:
            return [(name, primitive(v)) for v in value]
        return [(name, _DELIMITERS.get(style, ",").join(primitive(v) for v in value))]
    if isinstance(value, dict):
        if explode:
            return [(k, primitive(v)) for k, v in value.items()]
        delimiter = _DELIMITERS.get(style, ",")
        return [(name, delimiter.join(f"{k}{delimiter}{primitive(v)}" for k, v in value.items()))]
    return [(name, primitive(value))]


def _deep_object(name: str, value: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, item in value.items():
        if isinstance(item, dict):
            pairs += _deep_object(f"{name}[{key}]", item)
        elif isinstance(item, list):
            pairs += [(f"{name}[{key}]", primitive(v)) for v in item]
        else:
            pairs.append((f"{name}[{key}]", primitive(item)))
    return pairs


def header_value(value: Any, explode: bool) -> str:
    """Header style `simple`: arrays `a,b`, objects `k,v` or exploded `k=v`."""
    if isinstance(value, list):
        return ",".join(primitive(v) for v in value)
    if isinstance(value, dict):
        if explode:
            return ",".join(f"{k}={primitive(v)}" for k, v in value.items())
        return ",".join(f"{k},{primitive(v)}" for k, v in value.items())
    return primitive(value)


_COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


def cookie_value(value: Any) -> str:
    """Cookie style `form`; characters a cookie value cannot hold (`;`, `,`, space, quotes) are percent-encoded."""
    text = ",".join(primitive(v) for v in value) if isinstance(value, list) else header_value(value, False)
    return quote(text, safe=_COOKIE_SAFE)
