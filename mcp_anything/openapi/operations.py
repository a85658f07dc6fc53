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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp_anything.openapi import bodies
from mcp_anything.openapi.documents import SpecError
from mcp_anything.openapi.naming import TOOL_NAME, argument_name, path_slug, shorten, snake_case, with_prefix
from mcp_anything.openapi.requests import TEMPLATE, Param, RequestBuilder
from mcp_anything.openapi.schemas import INPUT, OUTPUT, Schemas
from mcp_anything.openapi.validation import ArgumentValidator, OutputValidator, SchemaCompiler
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


@dataclass(slots=True)
class Operation:
    method: str  # upper case
    path: str
    node: dict[str, Any]
    base: str  # URI of the document holding the operation
    shared_parameters: list[Any]  # the path item's parameters

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


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
    compile_schema: SchemaCompiler,
    output_schemas: bool = True,
) -> Tool:
    """`output_schemas=False`: no outputSchema, and only object results become structuredContent."""
    node = operation.node
    properties: dict[str, Any] = {}
    required: list[str] = []
    params = _parameter_arguments(operation, schemas, reserved_headers, properties, required)
    body = _request_body(operation, schemas, properties, required)
    input_schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        input_schema["required"] = required
    if body is not None and body.dependent_required:
        input_schema["dependentRequired"] = body.dependent_required

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
        validator = ArgumentValidator(compile_schema(input_schema))
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
    )


def _parameter_arguments(
    operation: Operation,
    schemas: Schemas,
    reserved_headers: frozenset[str],
    properties: dict[str, Any],
    required: list[str],
) -> list[Param]:
    """Add the parameters' arguments to `properties`/`required`, in location order; how to send each."""
    params = _parameters(operation, schemas)
    placeholders = TEMPLATE.findall(operation.path)
    declared_path = {p["name"] for p, _ in params if p["in"] == "path"}
    for placeholder in placeholders:
        if placeholder not in declared_path:  # a common spec slip; the call still needs the value
            params.append(({"name": placeholder, "in": "path", "required": True}, {"type": "string"}))
    built: list[Param] = []
    for location in _LOCATIONS:
        for param, schema in params:
            if param["in"] != location:
                continue
            if location == "header" and param["name"].lower() in reserved_headers:
                continue
            if location == "path" and param["name"] not in placeholders:
                continue
            argument = _unique(argument_name(param["name"]), properties, f"{location}_")
            properties[argument] = _describe(_non_empty(schema) if location == "path" else schema, param)
            if location == "path" or param.get("required") is True:
                required.append(argument)
            style = param.get("style") or _DEFAULT_STYLE[location]
            explode = param.get("explode", style == "form")
            built.append(Param(argument, param["name"], location, style, bool(explode), "content" in param))
    return built


def _unique(name: str, taken: Mapping[str, Any], prefix: str) -> str:
    while name in taken:
        name = prefix + name
    return name


def _parameters(operation: Operation, schemas: Schemas) -> list[tuple[dict[str, Any], Any]]:
    """Path-item and operation parameters, resolved; the operation's win on (name, in)."""
    merged: dict[tuple[str, str], tuple[dict[str, Any], Any]] = {}
    for raw in [*operation.shared_parameters, *(operation.node.get("parameters") or [])]:
        param, base = schemas.resolve(raw, operation.base)
        if not isinstance(param, dict) or not isinstance(param.get("name"), str) or param.get("in") not in _LOCATIONS:
            continue
        if "content" in param and isinstance(param["content"], dict) and param["content"]:
            media = next(iter(param["content"].values())) or {}
            raw_schema = media.get("schema", {})
        else:
            raw_schema = param.get("schema", {})
        merged[(param["name"], param["in"])] = (param, schemas.convert(raw_schema, base, INPUT))
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
    request_body, base = schemas.resolve(raw, operation.base)
    content = request_body.get("content") if isinstance(request_body, dict) else None
    if not isinstance(content, dict) or not content:
        return None
    body_required = request_body.get("required") is True
    media_type = bodies.choose_media_type(content)
    assert media_type is not None
    media = content[media_type] if isinstance(content[media_type], dict) else {}
    kind = bodies.kind_of(media_type)
    declared_encoding = media.get("encoding")
    encoding: dict[str, Any] = declared_encoding if isinstance(declared_encoding, dict) else {}
    schema = schemas.convert(media.get("schema", {}), base, INPUT)
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
    responses = operation.node.get("responses")
    if not isinstance(responses, dict):
        return None, False
    found: list[Any] = []
    for code, raw in responses.items():
        if not str(code).startswith("2"):
            continue
        response, base = schemas.resolve(raw, operation.base)
        content = response.get("content") if isinstance(response, dict) else None
        if not isinstance(content, dict):
            return None, False
        media_type = next((m for m in content if bodies.is_json(m)), None)
        if media_type is None or not isinstance(content[media_type], dict) or "schema" not in content[media_type]:
            return None, False
        found.append(schemas.convert(content[media_type]["schema"], base, OUTPUT))
    if not found or any(schema != found[0] for schema in found[1:]) or not isinstance(found[0], dict):
        return None, False
    schema = found[0]
    kind = schema.get("type")
    if kind == "object":
        return schema, False
    if isinstance(kind, str):
        return {"type": "object", "properties": {"result": schema}, "required": ["result"]}, True
    return None, False


def _accept(operation: Operation, schemas: Schemas) -> str | None:
    """Ask for JSON when a 2xx response offers it: upstreams (and mocks) otherwise pick their first type, often XML."""
    responses = operation.node.get("responses")
    for code, raw in responses.items() if isinstance(responses, dict) else ():
        if str(code).startswith("2"):
            response, _ = schemas.resolve(raw, operation.base)
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
