"""What an operation's 2xx responses give its tool: the outputSchema, and the media type it asks for."""

from __future__ import annotations

from typing import Any

from mcp_anything.openapi import bodies
from mcp_anything.openapi.documents import Documents
from mcp_anything.openapi.findings import OUTPUT_SCHEMA_OMITTED
from mcp_anything.openapi.operation import Operation
from mcp_anything.openapi.schemas import OUTPUT, Schemas


def output_schema(operation: Operation, schemas: Schemas) -> tuple[dict[str, Any] | None, bool]:
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


def accept(operation: Operation, schemas: Schemas) -> str | None:
    """Ask for JSON when a 2xx response offers it: upstreams (and mocks) otherwise pick their first type, often XML."""
    for _, response, _ in _success_responses(operation, schemas.documents):
        content = response.get("content") if isinstance(response, dict) else None
        media_type = next((m for m in content if bodies.is_json(m)), None) if isinstance(content, dict) else None
        if media_type is not None:
            return media_type
    return None
