"""One OpenAPI operation to one `Tool`: its input schema, output schema, annotations and request builder.

Input schema: one object whose properties are the operation's path, query, header and
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

The module is over 400 lines since findings were recorded per operation; the output schema
(`_output_schema` and its helpers) and the body arguments (`_request_body`, `_flatten`) are the
next to move out, with `Operation` in a module of its own so that they need not import this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp_anything.openapi import bodies, swagger2
from mcp_anything.openapi.documents import Documents, SpecError
from mcp_anything.openapi.findings import (
    BODY_MEDIA_TYPE,
    OUTPUT_SCHEMA_OMITTED,
    PARAMETER_DROPPED,
    PARAMETER_STYLE,
    Note,
)
from mcp_anything.openapi.naming import TOOL_NAME, argument_name, path_slug, shorten, snake_case, with_prefix
from mcp_anything.openapi.one_of import advertised
from mcp_anything.openapi.params import ObjectKeys
from mcp_anything.openapi.requests import TEMPLATE, Param, RequestBuilder
from mcp_anything.openapi.schemas import INPUT, OUTPUT, Schemas
from mcp_anything.openapi.validation import ArgumentValidator, OutputValidator, SchemaCompiler
from mcp_anything.shaping import ResultBudget
from mcp_anything.tools import Tool

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
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
_ANNOTATION_KEYS = frozenset({"title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"})
_DEFAULT_STYLE = {"path": "simple", "query": "form", "header": "simple", "cookie": "form"}
_STYLES = {
    "path": ("simple", "label", "matrix"),
    "query": ("form", "spaceDelimited", "pipeDelimited", "deepObject"),
    "header": ("simple",),
    "cookie": ("form",),
}


@dataclass(slots=True)
class Operation:
    method: str  # upper case
    path: str
    node: dict[str, Any]  # the operation object, its own `$ref`s followed
    base: str  # URI of the document holding the operation object
    shared_parameters: list[tuple[Any, str]]  # the path item's parameters, each with its document's URI
    notes: list[Note] = field(default_factory=list)  # what the tool approximates (see `findings`)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def title(self) -> str:
        """The label findings carry: `GET /things (listThings)`."""
        operation_id = self.node.get("operationId")
        return f"{self.label} ({operation_id})" if operation_id else self.label

    def note(self, kind: str, message: str, changes_calls: bool = False) -> None:
        self.notes.append(Note(kind, message, changes_calls))


def tool_name(operation: Operation, prefix: str) -> str:
    explicit = operation.node.get("x-mcp-name")
    if explicit is not None:
        name = with_prefix(prefix, str(explicit))
        if not TOOL_NAME.match(name):
            raise SpecError(
                f"x-mcp-name {explicit!r} gives tool name {name!r}, which does not match ^[a-zA-Z0-9_-]{{1,64}}$"
            )
        return name
    operation_id = operation.node.get("operationId")
    base = snake_case(str(operation_id)) if operation_id else ""
    return shorten(with_prefix(prefix, base or path_slug(operation.method, operation.path)))


def build_tool(
    operation: Operation,
    name: str,
    base_name: str,
    upstream: str,
    schemas: Schemas,
    reserved_headers: frozenset[str],
    reserved_query: frozenset[str],
    compile_schema: SchemaCompiler,
    output_schemas: bool = True,
    max_result_bytes: int | None = None,
) -> Tool:
    """`output_schemas=False`: no outputSchema, and only object results become structuredContent.

    `max_result_bytes`: the upstream's result budget (the operation's `x-mcp-max-result-bytes` wins); None: none.
    """
    node = operation.node
    properties: dict[str, Any] = {}
    required: list[str] = []
    params = _parameter_arguments(operation, schemas, reserved_headers, reserved_query, properties, required)
    body = _request_body(operation, schemas, properties, required)
    checked: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        checked["required"] = required
    if body is not None and body.dependent_required:
        checked["dependentRequired"] = body.dependent_required
    input_schema = advertised(checked)

    output_schema, wraps_result = _output_schema(operation, schemas) if output_schemas else (None, False)
    description = _description(operation)
    annotations = _annotations(operation)
    definition: dict[str, Any] = {
        "name": name,
        "description": description,
        "inputSchema": input_schema,
        "annotations": annotations,
    }
    if output_schema is not None:
        definition["outputSchema"] = output_schema
    try:
        validator = ArgumentValidator(compile_schema(checked), checked)
    except ValueError as exc:
        raise SpecError(f"the input schema does not compile: {exc}") from None
    try:
        check_output = OutputValidator(compile_schema(output_schema)) if output_schema is not None else None
    except ValueError as exc:
        raise SpecError(f"the output schema does not compile: {exc}") from None
    tags = node.get("tags")
    return Tool(
        name=name,
        upstream=upstream,
        base_name=base_name,
        method=operation.method,
        path=operation.path,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        annotations=annotations,
        validate=validator,
        build_request=RequestBuilder(operation.method, operation.path, params, body, _accept(operation, schemas)),
        operation_id=node.get("operationId"),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        keywords=_keywords(node.get("x-mcp-keywords", [])),
        wraps_result=wraps_result,
        check_output=check_output,
        objects_only=not output_schemas,
        auth_required=node.get("x-mcp-auth-required", True) is not False,
        definition=definition,
        budget=_budget(node, max_result_bytes, input_schema, output_schema, wraps_result),
    )


def _budget(
    node: Mapping[str, Any],
    default: int | None,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any] | None,
    wraps_result: bool,
) -> ResultBudget | None:
    override = node.get("x-mcp-max-result-bytes")
    if override is not None and (isinstance(override, bool) or not isinstance(override, int) or override < 1024):
        raise SpecError(f"x-mcp-max-result-bytes must be a whole number of bytes, at least 1024, not {override!r}")
    max_bytes = override if override is not None else default
    if max_bytes is None:
        return None
    # The budget cuts the upstream's body: its schema, not the {"result": ...} wrapper.
    body_schema = output_schema["properties"]["result"] if output_schema is not None and wraps_result else output_schema
    return ResultBudget.for_tool(max_bytes, input_schema, body_schema)


def _parameter_arguments(
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


def _request_body(
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


# --- output schema, description, annotations ----------------------------------------------


def _output_schema(operation: Operation, schemas: Schemas) -> tuple[dict[str, Any] | None, bool]:
    """An outputSchema only when every 2xx response is the same JSON schema of a known type.

    Clients validate structuredContent against it, so anything uncertain (no schema, a
    204 next to a 200, a `oneOf` at the top) gets no outputSchema at all.
    """
    found: list[Any] = []
    missing = unusable = ""
    for code, response, base in _success_responses(operation, schemas.documents):
        content = response.get("content") if isinstance(response, dict) else None
        content = content if isinstance(content, dict) else {}
        if isinstance(response, dict) and "schema" in response and not content:
            # Swagger 2.0 form, in a file the root's conversion never saw: the media type is unknown
            unusable = unusable or f"response {code} is in Swagger 2.0 form (a schema without content)"
            continue
        media_type = next((m for m in content if bodies.is_json(m)), None)
        media, media_base = schemas.documents.follow(content[media_type], base) if media_type else (None, base)
        if not isinstance(media, dict) or "schema" not in media:
            missing = missing or f"response {code} has no JSON schema"
            continue
        found.append(schemas.convert(media["schema"], media_base, OUTPUT, operation.notes, f"response {code}"))
    if unusable:
        return _omitted(operation, unusable)
    if not found:
        return None, False
    if missing:
        return _omitted(operation, missing)
    if any(schema != found[0] for schema in found[1:]):
        return _omitted(operation, "its 2xx responses declare different schemas")
    schema = found[0]
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind == "object":
        return schema, False
    if isinstance(kind, str):
        return {"type": "object", "properties": {"result": schema}, "required": ["result"]}, True
    return _omitted(operation, "the result schema has no single type (a union, oneOf or anyOf at the top)")


def _omitted(operation: Operation, why: str) -> tuple[None, bool]:
    operation.note(OUTPUT_SCHEMA_OMITTED, f"no outputSchema: {why}; results are returned without one")
    return None, False


def _success_responses(operation: Operation, documents: Documents) -> list[tuple[str, Any, str]]:
    """The 2xx responses as (status, response, URI of its document), `$ref`s followed."""
    responses, base = documents.follow(operation.node.get("responses"), operation.base)
    if not isinstance(responses, dict):
        return []
    return [(str(code), *documents.follow(raw, base)) for code, raw in responses.items() if str(code).startswith("2")]


def _accept(operation: Operation, schemas: Schemas) -> str | None:
    """Ask for JSON when a 2xx response offers it: upstreams (and mocks) otherwise pick their first type, often XML."""
    for _, response, _ in _success_responses(operation, schemas.documents):
        content = response.get("content") if isinstance(response, dict) else None
        media_type = next((m for m in content if bodies.is_json(m)), None) if isinstance(content, dict) else None
        if media_type is not None:
            return media_type
    return None


def _description(operation: Operation) -> str:
    node = operation.node
    override = node.get("x-mcp-description")
    if isinstance(override, str) and override.strip():
        return override.strip()
    parts = [str(node[k]).strip() for k in ("summary", "description") if isinstance(node.get(k), str)]
    parts = [p for p in parts if p]
    if len(parts) == 2 and parts[1].startswith(parts[0]):
        parts = parts[1:]
    return "\n\n".join(parts) or operation.label


def _keywords(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise SpecError(f"x-mcp-keywords must be a list of strings, not {value!r}")
    return tuple(value)


def _annotations(operation: Operation) -> dict[str, Any]:
    annotations: dict[str, Any] = {}
    if operation.method in ("GET", "HEAD"):
        annotations["readOnlyHint"] = True
    if operation.method == "DELETE":
        annotations["destructiveHint"] = True
    if operation.method in ("PUT", "DELETE"):
        annotations["idempotentHint"] = True
    override = operation.node.get("x-mcp-annotations")
    if override is not None:
        if not isinstance(override, dict):
            raise SpecError("x-mcp-annotations must be a mapping")
        unknown = sorted(set(override) - _ANNOTATION_KEYS)
        if unknown:
            raise SpecError(f"x-mcp-annotations: unknown key(s) {unknown}; expected some of {sorted(_ANNOTATION_KEYS)}")
        annotations.update(override)
    return annotations
