"""An operation's tool arguments: its input schema's properties, and how each is sent.

The input schema is one object whose properties are the operation's path, query, header and
cookie parameters under their own names (see `naming.argument_name`), followed by the
properties of an object request body, flattened. Names are resolved in that order and
the first comer keeps its name: a later parameter whose name is taken becomes
`<in>_<name>` (`query_id`), a body property whose name is taken becomes `body_<name>`.
A body that is not a plain object (an array, a map, a `oneOf`) is one `body` argument.
When the body is optional, its required properties are required only once any body
property is given (`dependentRequired`). The top level forbids unknown arguments so a
misspelt argument fails instead of being dropped.

Header parameters named like the headers the gateway owns (`Host`, `Authorization`,
`Content-Type`, hop-by-hop headers, the upstream's configured headers...) are not
arguments: the spec cannot make a caller-controlled value override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp_anything.openapi import bodies, swagger2
from mcp_anything.openapi.documents import Documents, SpecError
from mcp_anything.openapi.findings import BODY_MEDIA_TYPE, PARAMETER_DROPPED, PARAMETER_STYLE
from mcp_anything.openapi.naming import argument_name
from mcp_anything.openapi.operation import Operation
from mcp_anything.openapi.params import ObjectKeys
from mcp_anything.openapi.requests import TEMPLATE, Param
from mcp_anything.openapi.schemas import INPUT, Schemas

_LOCATIONS = ("path", "query", "header", "cookie")
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "accept",
        "authorization",
        "proxy-authorization",
        "cookie",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "upgrade",
        "mcp-session-id",
        "x-mcp-authorized",
    }
)
_DEFAULT_STYLE = {"path": "simple", "query": "form", "header": "simple", "cookie": "form"}
_STYLES = {
    "path": ("simple", "label", "matrix"),
    "query": ("form", "spaceDelimited", "pipeDelimited", "deepObject"),
    "header": ("simple",),
    "cookie": ("form",),
}


def parameter_arguments(
    operation: Operation,
    schemas: Schemas,
    reserved_headers: frozenset[str],
    reserved_query: frozenset[str],
    properties: dict[str, Any],
    required: list[str],
) -> list[Param]:
    """Add the parameters' arguments to `properties`/`required`, in location order; how to send each.

    `reserved_query`: lower-cased query names the gateway sets (a credential); no object key may take them.
    """
    params = _parameters(operation, schemas)
    query_names = frozenset(p["name"].lower() for p, _ in params if p["in"] == "query")
    placeholders = TEMPLATE.findall(operation.path)
    declared_path = {p["name"] for p, _ in params if p["in"] == "path"}
    for placeholder in placeholders:
        if placeholder not in declared_path:  # a common spec slip; the call still needs the value
            operation.note(PARAMETER_DROPPED, f"path parameter {{{placeholder}}} is not declared; it takes a string")
            params.append(({"name": placeholder, "in": "path", "required": True}, {"type": "string"}))
    built: list[Param] = []
    for location in _LOCATIONS:
        for param, schema in params:
            if param["in"] != location:
                continue
            name = param["name"]
            if location == "header" and name.lower() in reserved_headers:
                operation.note(PARAMETER_DROPPED, f"header parameter {name!r} is set by the gateway, not an argument")
                continue
            if location == "path" and name not in placeholders:
                operation.note(PARAMETER_DROPPED, f"path parameter {name!r} is not in the path template; left out")
                continue
            argument = _unique(argument_name(name), properties, f"{location}_")
            properties[argument] = _describe(_non_empty(schema) if location == "path" else schema, param)
            if location == "path" or param.get("required") is True:
                required.append(argument)
            style = _style(operation, param, location)
            explode = param.get("explode", style == "form")
            keys = ObjectKeys.of(schema, reserved_query, query_names) if location == "query" else None
            built.append(Param(argument, name, location, style, bool(explode), "content" in param, keys))
    return built


def _style(operation: Operation, param: dict[str, Any], location: str) -> str:
    """The parameter's style when the gateway implements it for its location, else the location's default."""
    style = param.get("style") or _DEFAULT_STYLE[location]
    what = f"{location} parameter {param['name']!r}"
    if style not in _STYLES[location]:
        default = _DEFAULT_STYLE[location]
        operation.note(
            PARAMETER_STYLE, f"{what}: style {style!r} is not defined for {location}; sent as {default}", True
        )
        style = default
    if param.get("allowReserved") is True:
        operation.note(
            PARAMETER_STYLE, f"{what}: allowReserved is not honoured; reserved characters are percent-encoded"
        )
    media = next(iter(param["content"]), None) if isinstance(param.get("content"), dict) else None
    if isinstance(media, str) and not bodies.is_json(media):
        operation.note(PARAMETER_STYLE, f"{what}: content {media!r} is sent as JSON text", True)
    return style


def _unique(name: str, taken: Mapping[str, Any], prefix: str) -> str:
    while name in taken:
        name = prefix + name
    return name


def listed_parameters(node: Any, base: str, documents: Documents) -> list[tuple[Any, str]]:
    """A `parameters` list (itself possibly a `$ref`) as (parameter, URI of its document) pairs."""
    listed, base = documents.follow(node, base)
    if listed is None:
        return []
    if not isinstance(listed, list):
        raise SpecError(f"parameters must be a list, got {type(listed).__name__}")
    return [(raw, base) for raw in listed]


def _parameters(operation: Operation, schemas: Schemas) -> list[tuple[dict[str, Any], Any]]:
    """Path-item and operation parameters, resolved; the operation's win on (name, in)."""
    merged: dict[tuple[str, str], tuple[dict[str, Any], Any]] = {}
    own = listed_parameters(operation.node.get("parameters"), operation.base, schemas.documents)
    for raw, where in [*operation.shared_parameters, *own]:
        param, base = schemas.documents.follow(raw, where)
        if isinstance(param, dict) and "type" in param and "schema" not in param and "content" not in param:
            param = swagger2.parameter(param)  # Swagger 2.0, in a file the root's conversion never saw
        if not isinstance(param, dict) or not isinstance(param.get("name"), str) or param.get("in") not in _LOCATIONS:
            operation.note(
                PARAMETER_DROPPED, f"a parameter without a valid name and location is left out: {param!r:.80}", True
            )
            continue
        raw_schema = param.get("schema", {})
        if "content" in param and isinstance(param["content"], dict) and param["content"]:
            media, base = schemas.documents.follow(next(iter(param["content"].values())), base)
            raw_schema = media.get("schema", {}) if isinstance(media, dict) else {}
        where = f"{param['in']} parameter {param['name']!r}"
        merged[(param["name"], param["in"])] = (param, schemas.convert(raw_schema, base, INPUT, operation.notes, where))
    return list(merged.values())


_NON_EMPTY = {"string": ("minLength", 1), "array": ("minItems", 1), "object": ("minProperties", 1)}


def _non_empty(schema: Any) -> Any:
    """A path value cannot be empty (it would remove a path segment): say so in the schema the caller sees."""
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type", "string") if not any(k in schema for k in ("anyOf", "allOf", "enum", "const")) else None
    if kind not in _NON_EMPTY:
        return schema
    keyword, minimum = _NON_EMPTY[kind]
    return schema if schema.get(keyword, 0) >= minimum else {**schema, keyword: minimum}


def _describe(schema: Any, param: dict[str, Any]) -> Any:
    """The parameter's own description (and deprecation) on top of its (shared) schema."""
    extra = {}
    if isinstance(param.get("description"), str) and param["description"]:
        extra["description"] = param["description"]
    if param.get("deprecated") is True:
        extra["deprecated"] = True
    if "example" in param:
        extra["examples"] = [param["example"]]
    if not extra:
        return schema
    return {**schema, **extra} if isinstance(schema, dict) else {"allOf": [schema], **extra}


# --- request body ---------------------------------------------------------------------


def _flattenable(schema: Any) -> bool:
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        return False
    if schema.get("type", "object") != "object":
        return False
    extra = schema.get("additionalProperties", False)
    return extra is False and not any(
        k in schema for k in ("allOf", "oneOf", "anyOf", "not", "if", "patternProperties", "dependentSchemas")
    )


def request_body(
    operation: Operation, schemas: Schemas, properties: dict[str, Any], required: list[str]
) -> bodies.Body | None:
    raw = operation.node.get("requestBody")
    if raw is None:
        return None
    request_body, base = schemas.documents.follow(raw, operation.base)
    content = request_body.get("content") if isinstance(request_body, dict) else None
    if not isinstance(content, dict) or not content:
        operation.note(BODY_MEDIA_TYPE, "the request body declares no media type; the tool sends none", True)
        return None
    body_required = request_body.get("required") is True
    media_type = bodies.choose_media_type(content)
    assert media_type is not None
    media, base = schemas.documents.follow(content[media_type], base)
    media = media if isinstance(media, dict) else {}
    kind = bodies.kind_of(media_type)
    declared_encoding = media.get("encoding")
    encoding: dict[str, Any] = declared_encoding if isinstance(declared_encoding, dict) else {}
    schema = schemas.convert(media.get("schema", {}), base, INPUT, operation.notes, "the request body")
    _note_body(operation, media_type, kind, schema, encoding)
    body = bodies.Body(media_type, kind, None, "", body_required, encoding, {})
    if kind in (bodies.JSON, bodies.FORM, bodies.MULTIPART) and _flattenable(schema):
        _flatten(body, schema, properties, required)
        return body
    if kind == bodies.TEXT:
        schema = schema if isinstance(schema, dict) and schema.get("type") == "string" else {"type": "string"}
    elif kind == bodies.BINARY:
        schema = bodies.BASE64_SCHEMA
    body.argument = _unique("body", properties, "request_")
    if isinstance(request_body.get("description"), str) and isinstance(schema, dict):
        schema = {**schema, "description": request_body["description"]}
    properties[body.argument] = schema
    if body_required:
        required.append(body.argument)
    return body


def _note_body(operation: Operation, media_type: str, kind: str, schema: Any, encoding: dict[str, Any]) -> None:
    essence = media_type.split(";", 1)[0].strip().lower()
    if kind == bodies.BINARY and essence.startswith("multipart/"):
        operation.note(
            BODY_MEDIA_TYPE, f"{media_type} bodies cannot be built: the tool takes raw bytes, with no boundary", True
        )
    elif kind == bodies.TEXT and isinstance(schema, dict) and schema.get("type", "string") != "string":
        operation.note(
            BODY_MEDIA_TYPE, f"the {media_type} body is a string the caller writes; its schema is not checked"
        )
    if any(isinstance(e, dict) and "headers" in e for e in encoding.values()):
        operation.note(BODY_MEDIA_TYPE, f"the {media_type} body's per-part headers (encoding.headers) are not sent")


def _flatten(body: bodies.Body, schema: dict[str, Any], properties: dict[str, Any], required: list[str]) -> None:
    """The body's properties become top-level arguments (renamed `body_<name>` when taken)."""
    body.fields = []
    # A required property the spec forgot to declare still has to be sent: it takes any value.
    undeclared = {r: _UNDECLARED for r in schema.get("required", []) if r not in schema["properties"]}
    for prop, prop_schema in {**schema["properties"], **undeclared}.items():
        argument = _unique(argument_name(prop), properties, "body_")
        if body.kind == bodies.MULTIPART:
            prop_schema = _file_argument(prop_schema, (body.encoding.get(prop) or {}).get("contentType"))
        properties[argument] = prop_schema
        body.fields.append((argument, prop))
    argument_of = {p: a for a, p in body.fields}
    inner_required = [argument_of[r] for r in schema.get("required", []) if r in argument_of]
    if body.required:
        required += inner_required
    elif inner_required:
        dependent = {a: [r for r in inner_required if r != a] for a, _ in body.fields}
        body.dependent_required = {a: rs for a, rs in dependent.items() if rs}


_UNDECLARED: dict[str, Any] = {"description": "Required by the spec, which gives it no schema."}


def _file_argument(schema: Any, encoding_type: str | None) -> Any:
    """A multipart file property takes a base64 file object (an array of them for an array of files)."""
    if bodies.is_binary(schema, encoding_type):
        described = schema.get("description") if isinstance(schema, dict) else None
        return {**bodies.FILE_SCHEMA, "description": described} if described else bodies.FILE_SCHEMA
    if isinstance(schema, dict) and schema.get("type") == "array" and bodies.is_binary(schema.get("items")):
        return {**schema, "items": bodies.FILE_SCHEMA}
    return schema
