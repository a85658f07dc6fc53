"""One OpenAPI operation to one `Tool`: its name, description, annotations, result budget and validators.

The arguments (input schema and how each is sent) come from `arguments`, the outputSchema and the
media type asked for from `responses`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp_anything.openapi import responses
from mcp_anything.openapi.arguments import parameter_arguments, request_body
from mcp_anything.openapi.documents import SpecError
from mcp_anything.openapi.naming import TOOL_NAME, path_slug, shorten, snake_case, with_prefix
from mcp_anything.openapi.one_of import advertised
from mcp_anything.openapi.operation import Operation
from mcp_anything.openapi.requests import RequestBuilder
from mcp_anything.openapi.schemas import Schemas
from mcp_anything.openapi.validation import ArgumentValidator, OutputValidator, SchemaCompiler
from mcp_anything.shaping import ResultBudget
from mcp_anything.tools import Tool

_ANNOTATION_KEYS = frozenset({"title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"})


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
    params = parameter_arguments(operation, schemas, reserved_headers, reserved_query, properties, required)
    body = request_body(operation, schemas, properties, required)
    checked: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        checked["required"] = required
    if body is not None and body.dependent_required:
        checked["dependentRequired"] = body.dependent_required
    input_schema = advertised(checked)

    output_schema, wraps_result = responses.output_schema(operation, schemas) if output_schemas else (None, False)
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
    accept = responses.accept(operation, schemas)
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
        build_request=RequestBuilder(operation.method, operation.path, params, body, accept),
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
