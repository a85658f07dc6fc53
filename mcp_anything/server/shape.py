"""A group's response filters on one tool: built once per tool, bound to one caller per call.

`ToolFilters` is what a group's `response_filters` make of one tool at load: the filters that
apply to it, the outputSchema it then advertises (relaxed so that every filtered result matches
it) and the check of results against that schema. `CallerView` binds them to one caller's verified
claims for one call; `server.results` applies it to the upstream's answer, and afterwards it
holds what the filters removed (counts only) for the audit line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcp_anything.openapi.validation import OutputValidator, SchemaCompiler
from mcp_anything.shaping import ClaimMissing, CompiledFilter, FilterStats, apply_filters, relax_output_schema
from mcp_anything.tools import Tool

# What a caller is told when a filter needs a claim they lack: nothing about the filter or the data.
WITHHELD = "The response of tool '{tool}' was withheld: its response filters need a claim your identity does not carry."


@dataclass(frozen=True, slots=True)
class ToolFilters:
    """The filters of a group that apply to one tool, and the contract they leave it (built once)."""

    filters: tuple[CompiledFilter, ...]
    definition: dict[str, Any]  # the `tools/list` entry, outputSchema relaxed
    check_output: OutputValidator | None  # against the relaxed outputSchema


def tool_filters(
    filters: Sequence[CompiledFilter], tools: Mapping[str, Tool], compile_schema: SchemaCompiler
) -> dict[str, ToolFilters]:
    """Each tool that some filter applies to, with its relaxed definition; tools without filters are left out."""
    found: dict[str, ToolFilters] = {}
    for name, tool in tools.items():
        applying = tuple(compiled for compiled in filters if compiled.applies_to(name))
        if not applying:
            continue
        definition, check_output = tool.definition, None
        if tool.output_schema is not None:
            check_output = OutputValidator(compile_schema(_relaxed(tool.output_schema, tool.wraps_result, applying)))
        # The advertised outputSchema may be a compact copy (or left out) to fit the tool's budget.
        advertised = tool.definition.get("outputSchema")
        if advertised is not None:
            definition = {**tool.definition, "outputSchema": _relaxed(advertised, tool.wraps_result, applying)}
        found[name] = ToolFilters(applying, definition, check_output)
    return found


def _relaxed(schema: dict[str, Any], wraps_result: bool, filters: tuple[CompiledFilter, ...]) -> dict[str, Any]:
    if not wraps_result:
        return relax_output_schema(schema, filters)
    # The filters see the upstream's body, which the tool wraps as {"result": ...}.
    properties = {**schema["properties"], "result": relax_output_schema(schema["properties"]["result"], filters)}
    return {**schema, "properties": properties}


class CallerView:
    """One call's filters bound to the caller's claims; after the call, what they removed."""

    __slots__ = ("claims", "stats", "tool", "tool_filters", "withheld")

    def __init__(self, tool: str, tool_filters: ToolFilters, claims: Mapping[str, Any]) -> None:
        self.tool = tool
        self.tool_filters = tool_filters
        self.claims = claims
        self.stats: FilterStats | None = None
        self.withheld: str | None = None  # why the whole response was withheld (names the claim, never a value)

    @property
    def check_output(self) -> OutputValidator | None:
        return self.tool_filters.check_output

    def refusal(self) -> str | None:
        """The caller's message when a claim the filters need is missing (checked before any data is read)."""
        try:
            for compiled in self.tool_filters.filters:
                compiled.bind(self.claims)
        except ClaimMissing as exc:
            self.withheld = str(exc)
            return WITHHELD.format(tool=self.tool)
        return None

    def apply(self, data: Any) -> Any:
        data, stats = apply_filters(self.tool_filters.filters, data, self.claims)
        self.stats = stats if self.stats is None else FilterStats(self.stats.filters + stats.filters)
        return data
