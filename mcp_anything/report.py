"""What `mcp-anything tools --report` says about the loaded tools, one section per function.

`definition_sizes`: each tool's `tools/list` entry size against its upstream's
`max_tool_bytes`, what was cut to fit (see `openapi/compact.py`), and the tools still over.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mcp_anything.config import GroupConfig
from mcp_anything.openapi import UpstreamTools
from mcp_anything.tools import Tool


def tool_report(groups: Sequence[GroupConfig], specs: Mapping[str, UpstreamTools]) -> list[str]:
    """The `tools --report` text: its sections, one after the other."""
    return definition_sizes(groups, specs)


def tool_report_json(groups: Sequence[GroupConfig], specs: Mapping[str, UpstreamTools]) -> dict[str, Any]:
    """The `tools --report --json` document: per group, per tool."""
    return {
        group.name: [
            {
                "name": tool.name,
                "upstream": tool.upstream,
                "bytes": tool.fit.size if tool.fit else None,
                "max_tool_bytes": tool.fit.limit if tool.fit else None,
                "over_budget": bool(tool.fit and tool.fit.over),
                "trimmed": list(tool.fit.trimmed) if tool.fit else [],
            }
            for tool in _tools(group, specs)
        ]
        for group in groups
    }


def definition_sizes(groups: Sequence[GroupConfig], specs: Mapping[str, UpstreamTools]) -> list[str]:
    """Per tool, its entry's size and what was trimmed; then the tools over budget (their input schema alone is)."""
    lines = ["Definition sizes (bytes of each tools/list entry / max_tool_bytes; what was cut to fit):"]
    for group in groups:
        tools = list(_tools(group, specs))
        total = sum(tool.fit.size for tool in tools if tool.fit)
        lines.append(f"{group.name}: {len(tools)} tools, {total} bytes in all")
        for tool in tools:
            if tool.fit is None:
                continue
            marker = "!" if tool.fit.over else " "
            trimmed = ", ".join(tool.fit.trimmed) or "-"
            lines.append(f"  {marker} {tool.name:<40} {tool.fit.size:>7} / {tool.fit.limit:<7} {trimmed}")
        over = [tool.name for tool in tools if tool.fit and tool.fit.over]
        if over:
            lines.append(f"  ! over budget ({len(over)}), their input schema alone is larger: {', '.join(over)}")
        else:
            lines.append("  every entry is within its budget")
    return lines


def _tools(group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> Iterator[Tool]:
    for upstream in group.upstreams:
        yield from specs[upstream].tools
