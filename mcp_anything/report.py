"""What the CLI reports about loaded specs: findings for `validate`, per-tool sections for `tools --report`.

Findings (`openapi.findings`) say what a tool approximates. `validate` lists them by
operation; `tools --report` lists, per tool, what was approximated. Each report section is
one function returning its lines, so further sections (definition sizes...) sit beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcp_anything.config import GroupConfig
from mcp_anything.openapi import UpstreamTools
from mcp_anything.openapi.findings import Finding, by_operation


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
    return approximations(groups, specs)


def approximations(groups: Sequence[GroupConfig], specs: Mapping[str, UpstreamTools]) -> list[str]:
    """Per tool, what it approximates of its operation (tools without findings are left out)."""
    lines = ["What each tool approximates (findings; * changes what can be called):"]
    for group in groups:
        lines.append(f"{group.name}:")
        listed = False
        for upstream in group.upstreams:
            by_tool: dict[str, list[Finding]] = {}
            for finding in specs[upstream].findings:
                by_tool.setdefault(finding.tool, []).append(finding)
            for tool in specs[upstream].tools:
                for finding in by_tool.get(tool.name, []):
                    marker = "*" if finding.changes_calls else " "
                    lines.append(f"  {marker} {tool.name:<40} {finding.kind:<22} {finding.message}")
                    listed = True
        if not listed:
            lines.append("    none: every tool is its operation as the spec wrote it")
    return lines
