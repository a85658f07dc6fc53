"""Findings: what the loader could not represent faithfully, per operation.

A spec is never degraded silently. Whatever the gateway approximates (a schema it loosened,
a parameter style it does not implement, a name it derived) is a `Finding` on the
operation it affects; `changes_calls` says whether it changes what can be called through
the tool (a call the spec allows that the tool cannot make, or one it sends differently).
`mcp-anything validate` prints them, `serve` logs them, `tools --report` lists them per tool.
A `$ref` that does not resolve is not a finding but an error: the upstream fails to load.

While a tool is built, parts that do not know their operation (schema conversion, shared
by every tool) report `Note`s; the loader turns them into findings of the operation.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

logger = logging.getLogger("mcp_anything.openapi")

LENIENT_REFERENCE = "lenient_reference"
PARAMETER_STYLE = "parameter_style"
PARAMETER_DROPPED = "parameter_dropped"
BODY_MEDIA_TYPE = "body_media_type"
SCHEMA_LOOSENED = "schema_loosened"
SCHEMA_UNSATISFIABLE = "schema_unsatisfiable"
DERIVED_NAME = "derived_name"
OUTPUT_SCHEMA_OMITTED = "output_schema_omitted"
SERVERS_IGNORED = "servers_ignored"


class Note(NamedTuple):
    kind: str
    message: str
    changes_calls: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    operation: str  # `GET /things (listThings)`
    kind: str
    message: str
    changes_calls: bool
    tool: str = ""  # the tool built from the operation, when there is one

    @classmethod
    def of(cls, operation: str, note: Note, tool: str = "") -> Finding:
        return cls(operation, note.kind, note.message, note.changes_calls, tool)

    def line(self) -> str:
        marker = " (changes what can be called)" if self.changes_calls else ""
        return f"{self.kind}{marker}: {self.message}"


def by_operation(findings: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.operation, []).append(finding)
    return grouped


def log_findings(upstream: str, findings: Sequence[Finding]) -> None:
    """One structured warning per finding (at startup and on every reload)."""
    for finding in findings:
        fields = {
            "upstream": upstream,
            "operation": finding.operation,
            "tool": finding.tool,
            "kind": finding.kind,
            "changes_calls": finding.changes_calls,
        }
        logger.warning("spec finding: %s", finding.message, extra={"fields": fields})


def counts(findings: Sequence[Finding]) -> dict[tuple[str, bool], int]:
    """How many findings of each (kind, changes_calls)."""
    return dict(Counter((f.kind, f.changes_calls) for f in findings))
