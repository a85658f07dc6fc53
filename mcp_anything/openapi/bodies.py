"""Request bodies: which media type a tool sends, what arguments it takes, and how they are encoded.

When an operation offers several media types the tool sends JSON if it can, else
form-urlencoded, multipart, text, and raw bytes last. Object bodies (JSON, form,
multipart) are flattened into top-level arguments (see `operations`); anything else
is one `body` argument:

- `application/json`, `*+json`: serialised with orjson.
- `application/x-www-form-urlencoded`: each property as `name=value` pairs, honouring
  the media type's `encoding` (style, explode, and `contentType: application/json`).
- `multipart/form-data`: one part per property (per item for arrays of primitives or
  files). Binary properties (`format: binary`, a non-text `contentMediaType` or
  `encoding.contentType`) are file arguments: `{"content": <base64>, "filename": ...,
  "content_type": ...}`. Objects are JSON parts, unless the property's `encoding` sets a
  `style`, which then splits it into form fields as OpenAPI 3.1 describes.
- `text/*`, XML: a `body` string, sent as UTF-8.
- anything else (`application/octet-stream`, images, `*/*`): a `body` string holding
  the bytes in base64.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from mcp_anything.config.headers import has_line_break
from mcp_anything.openapi.params import primitive, query_pairs
from mcp_anything.tools import ArgumentError, HttpRequest

JSON, FORM, MULTIPART, TEXT, BINARY = "json", "form", "multipart", "text", "binary"
_PREFERENCE = (JSON, FORM, MULTIPART, TEXT, BINARY)

FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A file: its bytes in base64, and optionally its name and media type.",
    "properties": {
        "content": {"type": "string", "contentEncoding": "base64", "description": "The file's bytes, base64-encoded."},
        "filename": {"type": "string"},
        "content_type": {"type": "string"},
    },
    "required": ["content"],
    "additionalProperties": False,
}
BASE64_SCHEMA: dict[str, Any] = {
    "type": "string",
    "contentEncoding": "base64",
    "description": "The request body's bytes, base64-encoded.",
}


def _essence(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def kind_of(media_type: str) -> str:
    value = _essence(media_type)
    if value == "application/json" or value.endswith(("+json", "/json")):
        return JSON
    if value == "application/x-www-form-urlencoded":
        return FORM
    if value == "multipart/form-data":
        return MULTIPART
    if value.startswith("text/") or value.endswith(("/xml", "+xml")):
        return TEXT
    return BINARY


def is_json(media_type: str) -> bool:
    return kind_of(media_type) == JSON


def choose_media_type(content: Mapping[str, Any]) -> str | None:
    """The media type a tool sends or reads: the most preferred kind, first listed within a kind."""
    ranked = sorted(content, key=lambda m: _PREFERENCE.index(kind_of(m)))
    return ranked[0] if ranked else None


def is_binary(schema: Any, encoding_type: str | None = None) -> bool:
    """A property that is a file in a multipart body."""
    if encoding_type and kind_of(encoding_type) == BINARY:
        return True
    if not isinstance(schema, dict):
        return False
    if schema.get("format") == "binary":
        return True
    media = schema.get("contentMediaType")
    return isinstance(media, str) and kind_of(media) == BINARY


@dataclass(slots=True)
class Body:
    """How one operation's request body is made from its arguments."""

    media_type: str
    kind: str
    fields: list[tuple[str, str]] | None  # (argument, property) when flattened; None: one argument
    argument: str  # the single body argument when not flattened
    required: bool
    encoding: dict[str, Any]  # the media type's per-property `encoding`
    dependent_required: dict[str, list[str]]

    def add_to(self, request: HttpRequest, arguments: Mapping[str, Any]) -> None:
        if self.fields is None:
            if self.argument not in arguments:
                return
            value = arguments[self.argument]
        else:
            value = {prop: arguments[arg] for arg, prop in self.fields if arg in arguments}
            if not value and not self.required:
                return
        request.body, request.headers["Content-Type"] = self._encode(value)

    def _encode(self, value: Any) -> tuple[bytes, str]:
        if self.kind == JSON:
            return orjson.dumps(value), self.media_type
        if self.kind == FORM:
            return urlencode(self._form_pairs(value)).encode(), self.media_type
        if self.kind == MULTIPART:
            return _multipart(value, self.encoding, self._argument_of)
        if self.kind == TEXT:
            return primitive(value).encode(), self.media_type
        return _decode_base64(self.argument, value), self.media_type

    def _argument_of(self, prop: str) -> str:
        return next((a for a, p in self.fields or [] if p == prop), prop)

    def _form_pairs(self, value: Any) -> list[tuple[str, str]]:
        if not isinstance(value, dict):
            raise ArgumentError(f"argument {self.argument!r}: a form body must be an object")
        pairs: list[tuple[str, str]] = []
        for prop, item in value.items():
            encoding = self.encoding.get(prop) or {}
            content_type = encoding.get("contentType")
            if isinstance(content_type, str) and is_json(content_type):
                pairs.append((prop, orjson.dumps(item).decode()))
                continue
            style = encoding.get("style", "form")
            pairs += query_pairs(prop, item, style, encoding.get("explode", style == "form"))
        return pairs


def _decode_base64(argument: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise ArgumentError(f"argument {argument!r}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ArgumentError(f"argument {argument!r}: not valid base64") from None


def _multipart(value: Any, encodings: dict[str, Any], argument_of: Any) -> tuple[bytes, str]:
    if not isinstance(value, dict):
        value = {"body": value}
    boundary = secrets.token_hex(16)
    out = bytearray()
    for prop, item in value.items():
        encoding = encodings.get(prop) or {}
        if "style" in encoding and not _is_file(item):
            # OpenAPI 3.1: an explicit style serialises the property into form fields, one part each
            style = encoding["style"]
            fields = query_pairs(prop, item, style, encoding.get("explode", style == "form"))
        else:
            fields = [(prop, part) for part in (item if isinstance(item, list) and _repeated_parts(item) else [item])]
        for name, part in fields:
            out += f"--{boundary}\r\n".encode()
            out += _part(name, part, encoding, argument_of(prop))
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _repeated_parts(items: list[Any]) -> bool:
    """Arrays of files or of primitives are one part per item; other arrays are one JSON part."""
    return all(not isinstance(i, dict | list) or _is_file(i) for i in items)


def _is_file(value: Any) -> bool:
    return isinstance(value, dict) and "content" in value and set(value) <= {"content", "filename", "content_type"}


def _part(name: str, value: Any, encoding: dict[str, Any], argument: str) -> bytes:
    disposition = f'form-data; name="{_quote(name, argument)}"'
    if _is_file(value):
        filename = value.get("filename") or name
        content_type = value.get("content_type") or encoding.get("contentType") or "application/octet-stream"
        data = _decode_base64(argument, value["content"])
        disposition += f'; filename="{_quote(filename, argument)}"'
    elif isinstance(value, dict | list):
        content_type, data = "application/json", orjson.dumps(value)
    else:
        content_type, data = encoding.get("contentType") or "text/plain", primitive(value).encode()
    if has_line_break(str(content_type)):
        raise ArgumentError(f"argument {argument!r}: content_type cannot contain line breaks")
    header = f"Content-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
    return header.encode() + data + b"\r\n"


def _quote(text: str, argument: str) -> str:
    if has_line_break(text):
        raise ArgumentError(f"argument {argument!r}: names cannot contain line breaks")
    return text.replace('"', "%22")
