"""The audit log: one line per authorization decision, on logger `mcp_anything.audit`.

Each line's structured fields (`extra={"fields": ...}`, rendered by `mcp_anything.logs`
as one JSON object with `time`, `level`, `logger` and `message`): `group`, `subject`,
`strategy` (inbound auth), `action` (`call`, `list`, `connect` or `filter`), `decision` (`allow` /
`deny`; for `filter`, `filtered` / `withheld`), and what decided: `rule` (`rules[2]`, `default`) with
its `notes`, and/or `reason`. A call line
names its `tool`; a list line counts the tools `shown` and `hidden` rather than naming
each one, so a gateway serving thousands of tools writes one line per `tools/list`, not
thousands. Which tools a caller can see follows from the config and their claims; what
they actually did is in the call lines. Token and secret values are never logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mcp_anything.identity import Identity
from mcp_anything.logs import AUDIT_LOGGER
from mcp_anything.metrics import AUTHZ_REFUSALS

if TYPE_CHECKING:
    from mcp_anything.shaping import FilterStats

logger = logging.getLogger(AUDIT_LOGGER)


def enabled() -> bool:
    return logger.isEnabledFor(logging.INFO)


def record(group: str, identity: Identity, action: str, decision: str, **details: Any) -> None:
    """Write one audit line, and count a refusal; details whose value is None are left out."""
    if decision == "deny":  # counted even when the audit log is off
        AUTHZ_REFUSALS.labels(group, action).inc()
    if not enabled():
        return
    fields = {
        "group": group,
        "subject": identity.subject,
        "strategy": identity.strategy,
        "action": action,
        "decision": decision,
    }
    fields.update((key, value) for key, value in details.items() if value is not None)
    logger.info("%s %s", action, decision, extra={"fields": fields})


def call(
    group: str, identity: Identity, tool: str, allowed: bool, *, rule: str | None, reason: str, notes: str = ""
) -> None:
    """`notes`: the deciding rule's own words, logged with it."""
    decision = "allow" if allowed else "deny"
    record(group, identity, "call", decision, tool=tool, rule=rule, reason=reason, notes=notes or None)


def listing(group: str, identity: Identity, shown: int, hidden: int, *, reason: str | None) -> None:
    record(group, identity, "list", "allow" if shown else "deny", shown=shown, hidden=hidden, reason=reason)


def response_filtered(
    group: str, identity: Identity, tool: str, stats: FilterStats | None, *, withheld: str | None
) -> None:
    """What a tool's response filters removed from one answer, per filter: counts and notes, never a value.

    `withheld`: why the whole answer was withheld (a claim the filters need is missing; names the claim).
    """
    applied = [
        {"filter": f.index, "notes": f.notes, "rows_removed": f.rows_removed, "fields_removed": f.fields_removed}
        for f in (stats.filters if stats is not None else ())
    ]
    record(
        group,
        identity,
        "filter",
        "withheld" if withheld is not None else "filtered",
        tool=tool,
        filters=applied or None,
        rows_removed=stats.rows_removed if stats is not None else None,
        fields_removed=stats.fields_removed if stats is not None else None,
        reason=withheld,
    )


def connect_refused(group: str, identity: Identity, *, rule: str | None, reason: str, notes: str = "") -> None:
    record(group, identity, "connect", "deny", rule=rule, reason=reason, notes=notes or None)
