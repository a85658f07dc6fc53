"""What the CLI reports about loaded specs: findings for `validate`, per-tool sections for `tools --report`.

Findings (`openapi.findings`) say what a tool approximates. `validate` lists them by
operation; `tools --report` lists, per tool, what was approximated, then each tool's
`tools/list` entry size against its upstream's `max_tool_bytes`, what was cut to fit
(see `openapi/compact.py`) and the tools still over. Each report section is one function
returning its lines; `tool_report_json` gives the same per tool for `--report --json`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mcp_anything.config import GroupConfig
from mcp_anything.openapi import UpstreamTools
from mcp_anything.openapi.findings import Finding, by_operation
from mcp_anything.tools import Tool


def findings_lines(findings: Sequence[Finding]) -> list[str]:
    """An upstream's findings grouped by operation, indented under the upstream's line."""
    if not findings:
        return []
    changing = sum(f.changes_calls for f in findings)
    lines = [f"  {len(findings)} finding(s), {changing} changing what can be called:"]
    for operation, found in by_operation(list(findings)).items():
        lines.append(f"  {operation}:")
        lines += [f"    {finding.line()}" for finding in found]
    return lines


def tool_report(groups: Sequence[GroupConfig], specs: Mapping[str, UpstreamTools]) -> list[str]:
    """The `tools --report` text: its sections, one after the other."""
    return [*approximations(groups, specs), "", *definition_sizes(groups, specs)]


def tool_report_json(groups: Sequence[GroupConfig], specs: Mapping[str, UpstreamTools]) -> dict[str, Any]:
    """The `tools --report --json` document: per group, per tool, the same as the text sections."""
    out: dict[str, Any] = {}
    for group in groups:
        findings = _findings_by_tool(group, specs)
        out[group.name] = [
            {
                "name": tool.name,
                "upstream": tool.upstream,
                "bytes": tool.fit.size if tool.fit else None,
                "max_tool_bytes": tool.fit.limit if tool.fit else None,
                "over_budget": bool(tool.fit and tool.fit.over),
                "trimmed": list(tool.fit.trimmed) if tool.fit else [],
                "findings": [
                    {"kind": f.kind, "message": f.message, "changes_calls": f.changes_calls}
                    for f in findings.get(tool.name, [])
                ],
            }
            for tool in _tools(group, specs)
        ]
    return out


def approximations(groups: Sequence[GroupConfig], specs: Mapping[str, UpstreamTools]) -> list[str]:
    """Per tool, what it approximates of its operation (tools without findings are left out)."""
    lines = ["What each tool approximates (findings; * changes what can be called):"]
    for group in groups:
        lines.append(f"{group.name}:")
        findings = _findings_by_tool(group, specs)
        listed = False
        for tool in _tools(group, specs):
            for finding in findings.get(tool.name, []):
                marker = "*" if finding.changes_calls else " "
                lines.append(f"  {marker} {tool.name:<40} {finding.kind:<22} {finding.message}")
                listed = True
        if not listed:
            lines.append("    none: every tool is its operation as the spec wrote it")
    return lines


def definition_sizes(groups: Sequence[GroupConfig], specs: Mapping[str, UpstreamTools]) -> list[str]:
    """Per tool, its entry's size and what was trimmed; then the tools over budget (their input schema alone is)."""
    lines = ["Definition sizes (bytes of each tools/list entry / max_tool_bytes; what was cut to fit; ! over):"]
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


def _findings_by_tool(group: GroupConfig, specs: Mapping[str, UpstreamTools]) -> dict[str, list[Finding]]:
    by_tool: dict[str, list[Finding]] = {}
    for upstream in group.upstreams:
        for finding in specs[upstream].findings:
            by_tool.setdefault(finding.tool, []).append(finding)
    return by_tool
