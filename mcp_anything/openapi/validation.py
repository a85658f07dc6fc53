"""Validation against a tool's schemas: arguments (input schema) and upstream results (output schema)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jsonschema_rs
import orjson

from mcp_anything.openapi.nesting import check_depth
from mcp_anything.openapi.one_of import one_of_problem
from mcp_anything.tools import ArgumentError

MAX_ERRORS = 5
MAX_VALUE_CHARS = 80
_ONE_OF_ERRORS = (jsonschema_rs.ValidationErrorKind.OneOfNotValid, jsonschema_rs.ValidationErrorKind.OneOfMultipleValid)


class SchemaCompiler:
    """Compiles each distinct schema once per spec.

    Large specs repeat the same shapes across operations (2,000 operations of a generated spec have
    about 400 distinct output schemas), and a compiled validator is far larger than its schema.
    Raises ValueError for a schema that does not compile.
    """

    def __init__(self) -> None:
        self._compiled: dict[bytes, Any] = {}

    def __call__(self, schema: dict[str, Any]) -> Any:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        validator = self._compiled.get(key)
        if validator is None:
            # Formats stay annotations: the upstream decides what a valid date or e-mail is.
            validator = self._compiled[key] = jsonschema_rs.validator_for(schema)
        return validator


class ArgumentValidator:
    """Checks a tool's arguments; calling it raises ArgumentError listing up to MAX_ERRORS problems.

    `oneOf` has its real meaning: exactly one branch must match. When it fails, the error names
    the branches, which of them the argument matches (or why it matches none), and what would
    select exactly one: the discriminator's value where the spec declares one.
    """

    __slots__ = ("_schema", "_validator")

    def __init__(self, validator: Any, schema: dict[str, Any]) -> None:
        self._validator = validator  # from SchemaCompiler
        self._schema = schema  # the schema it was compiled from

    def __call__(self, arguments: Mapping[str, Any]) -> None:
        if not isinstance(arguments, Mapping):
            raise ArgumentError(f"arguments must be an object, got {type(arguments).__name__}")
        check_depth(arguments)
        if self._validator.is_valid(arguments):
            return
        problems = []
        for error in self._validator.iter_errors(arguments):
            problems.append(_describe(error, self._schema))
            if len(problems) == MAX_ERRORS:
                break
        raise ArgumentError("; ".join(dict.fromkeys(problems)))


class OutputValidator:
    """Does a result's structuredContent match the tool's outputSchema?

    Clients reject a result whose structured content contradicts the declared schema, so an
    upstream drifting from its spec would break them; the gateway checks first (see `upstream`).
    """

    __slots__ = ("_validator",)

    def __init__(self, validator: Any) -> None:
        self._validator = validator  # from SchemaCompiler

    def __call__(self, structured: Any) -> OutputMismatch | None:
        """None when `structured` conforms; else the first error."""
        if self._validator.is_valid(structured):
            return None
        error = next(self._validator.iter_errors(structured))
        where = _where(list(error.instance_path)) if error.instance_path else "(top level)"
        keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
        return OutputMismatch(where, keyword, _shorten_message(error))


class OutputMismatch(NamedTuple):
    where: str  # the JSON path of the offending value, `usage_records[0].price`
    keyword: str  # the schema keyword it fails (`type`, `minLength`...): loggable, unlike `message`
    message: str  # quotes (a shortened) value: for the caller, never for logs


def _describe(error: jsonschema_rs.ValidationError, schema: dict[str, Any]) -> str:
    path = list(error.instance_path)
    kind = error.kind
    if isinstance(
        kind, jsonschema_rs.ValidationErrorKind.OneOfNotValid | jsonschema_rs.ValidationErrorKind.OneOfMultipleValid
    ):
        node = _at(schema, list(error.schema_path)[:-1])
        if isinstance(node, dict) and isinstance(node.get("oneOf"), list):
            return one_of_problem(_where(path) if path else "arguments", node, error)
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        if not path:
            return f"missing required argument {kind.property!r}"
        return f"argument {_where(path)!r}: missing required property {kind.property!r}"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        names = ", ".join(repr(name) for name in kind.unexpected)
        if not path:
            return f"unknown argument {names}" if len(kind.unexpected) == 1 else f"unknown arguments {names}"
        return f"argument {_where(path)!r}: unknown property {names}"
    if not path:
        return f"arguments: {_shorten_message(error)}"
    return f"argument {_where(path)!r}: {_shorten_message(error)}"


def _where(path: list[str | int]) -> str:
    where = str(path[0])
    for part in path[1:]:
        where += f"[{part}]" if isinstance(part, int) else f".{part}"
    return where


def _shorten_message(error: jsonschema_rs.ValidationError) -> str:
    """The validator's message, with the offending value cut short: it may be huge or sensitive."""
    message = error.message
    rendered = orjson.dumps(error.instance).decode() if error.instance is not None else "null"
    if len(rendered) > MAX_VALUE_CHARS and rendered in message:
        message = message.replace(rendered, rendered[:MAX_VALUE_CHARS] + "...")
    message = message.replace('"', "'")
    if len(message) > 300:
        message = message[:300] + "..."
    return message


def _at(schema: Any, path: list[str | int]) -> Any:
    for part in path:
        if isinstance(schema, dict) and isinstance(part, str):
            schema = schema.get(part)
        elif isinstance(schema, list) and isinstance(part, int) and part < len(schema):
            schema = schema[part]
        else:
            return None
    return schema
