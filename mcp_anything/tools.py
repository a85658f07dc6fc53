"""The tool model shared by the OpenAPI builder, the server and the upstream caller.

Tools are built once at startup (see `openapi/`) and never rebuilt per request:
`definition` is the exact JSON object `tools/list` returns for the tool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_anything.shaping import ResultBudget


@dataclass(slots=True)
class HttpRequest:
    """An upstream request built from tool arguments, before outbound auth is applied.

    `path` is already percent-encoded and relative to the upstream's base URL.
    Outbound auth strategies add to `headers` and `query`.
    """

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class DefinitionFit:
    """How a tool's `tools/list` entry was fitted to its upstream's `max_tool_bytes` (see `openapi/compact.py`)."""

    size: int  # bytes of the serialised entry
    limit: int
    trimmed: tuple[str, ...] = ()  # what was cut to fit, in the order it was cut

    @property
    def over(self) -> bool:
        """Still over the budget: only when the input schema alone is too big."""
        return self.size > self.limit


class ArgumentError(ValueError):
    """Tool arguments that do not fit the tool's input schema; the message names the argument."""


@dataclass(slots=True, eq=False)
class Tool:
    name: str
    upstream: str
    # The name before the upstream's prefix was added: what capability claims list (`get_book`).
    base_name: str
    method: str  # upper case
    path: str  # the templated path from the spec, e.g. /pets/{petId}
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, Any]
    # Raises ArgumentError naming the argument and the problem.
    validate: Callable[[Mapping[str, Any]], None]
    # Turns validated arguments into an HttpRequest.
    build_request: Callable[[Mapping[str, Any]], HttpRequest]
    operation_id: str | None = None
    tags: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()  # `x-mcp-keywords`: extra words search matches the tool by
    wraps_result: bool = False  # the 2xx JSON is not an object: structuredContent is {"result": ...}
    # Checks structuredContent against output_schema (None when there is none); returns the first mismatch.
    check_output: Callable[[Any], Any] | None = None
    # Upstream `output_schemas: false`: only JSON objects become structuredContent, nothing is wrapped.
    objects_only: bool = False
    auth_required: bool = True  # False: `x-mcp-auth-required: false`, no outbound credentials
    definition: dict[str, Any] = field(default_factory=dict)
    # How much of a result an agent gets (upstream `max_result_bytes`, or `x-mcp-max-result-bytes`); None: all.
    budget: ResultBudget | None = None
    fit: DefinitionFit | None = None  # set once `definition` is fitted to `max_tool_bytes`
