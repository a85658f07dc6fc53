"""Tool arguments to an HTTP request: the path, query, header and cookie parameters, then the body.

Everything about an operation is worked out once when its tool is built (`RequestBuilder`);
a call only serialises values. Path values are percent-encoded by `params`; the spec's
literal path text is encoded here, once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import orjson

from mcp_anything.config.headers import has_control
from mcp_anything.openapi import bodies
from mcp_anything.openapi.params import ObjectKeys, cookie_value, header_value, path_value, query_pairs
from mcp_anything.tools import ArgumentError, HttpRequest

TEMPLATE = re.compile(r"\{([^{}]+)\}")  # a `{name}` placeholder in a path template
_PCHAR = "!$&'()*+,;=:@-._~%"  # RFC 3986 path characters, and % so the spec's own escapes stay as written


@dataclass(slots=True)
class Param:
    """One parameter argument and how it is sent."""

    argument: str
    name: str
    location: str
    style: str
    explode: bool
    as_json: bool  # declared with `content` instead of `schema`: the value is sent as JSON text
    keys: ObjectKeys | None = None  # query parameters: which keys of an object value may be sent


def _literal(text: str) -> str:
    """A spec's literal path text, encoded: `#` or `?` in a path key must not become a fragment or a query."""
    return quote(text, safe=_PCHAR)


class RequestBuilder:
    """Turns validated arguments into an HttpRequest; everything about the operation is precomputed."""

    __slots__ = ("_accept", "_body", "_cookie", "_header", "_method", "_path_params", "_query", "_segments")

    def __init__(
        self, method: str, path: str, params: list[Param], body: bodies.Body | None, accept: str | None
    ) -> None:
        self._method = method
        self._accept = accept
        self._path_params = {p.name: p for p in params if p.location == "path"}
        self._query = [p for p in params if p.location == "query"]
        self._header = [p for p in params if p.location == "header"]
        self._cookie = [p for p in params if p.location == "cookie"]
        self._body = body
        # literal segments as str, templated ones as the list of literal/param parts
        self._segments: list[str | list[str | Param]] = []
        for segment in path.split("/"):
            if "{" not in segment:
                self._segments.append(_literal(segment))
                continue
            parts: list[str | Param] = []
            for i, piece in enumerate(TEMPLATE.split(segment)):
                parts.append(self._path_params[piece] if i % 2 else _literal(piece))
            self._segments.append(parts)

    def __call__(self, arguments: Mapping[str, Any]) -> HttpRequest:
        request = HttpRequest(method=self._method, path=self._build_path(arguments))
        if self._accept is not None:
            request.headers["Accept"] = self._accept
        for param in self._query:
            if param.argument in arguments:
                value = arguments[param.argument]
                if param.as_json:
                    value = _json_text(value)
                elif param.keys is not None and isinstance(value, Mapping):
                    as_names = param.explode and param.style != "deepObject"
                    value = param.keys.select(param.argument, value, as_names)
                request.query += query_pairs(param.name, value, param.style, param.explode)
        for param in self._header:
            if param.argument in arguments:
                value = arguments[param.argument]
                text = _json_text(value) if param.as_json else header_value(value, param.explode)
                if has_control(text):
                    raise ArgumentError(f"argument {param.argument!r}: header values cannot contain control characters")
                request.headers[param.name] = text
        for param in self._cookie:
            if param.argument in arguments:
                value = arguments[param.argument]
                request.cookies[param.name] = cookie_value(_json_text(value) if param.as_json else value)
        if self._body is not None:
            self._body.add_to(request, arguments)
        return request

    def _build_path(self, arguments: Mapping[str, Any]) -> str:
        out = []
        for segment in self._segments:
            if isinstance(segment, str):
                out.append(segment)
                continue
            text = ""
            for part in segment:
                if isinstance(part, str):
                    text += part
                    continue
                value = arguments.get(part.argument)
                if value is None or value == "" or value == [] or value == {}:
                    raise ArgumentError(f"argument {part.argument!r}: a path parameter cannot be empty")
                if part.as_json:
                    value = _json_text(value)
                text += path_value(part.name, value, part.style, part.explode)
            if unquote(text) in (".", ".."):
                raise ArgumentError(f"argument {_segment_argument(segment)!r}: '.' and '..' are not valid path values")
            out.append(text)
        return "/".join(out)


def _segment_argument(segment: list[str | Param]) -> str:
    return next(p.argument for p in segment if isinstance(p, Param))


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()
