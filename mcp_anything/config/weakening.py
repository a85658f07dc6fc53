"""Which changes between two configs leave a group less protected than before.

The reloader refuses such a config unless it says `server.allow_weakening_reload: true`:
a security setting must not disappear because a file was edited in the wrong order, or
half-written when it was read. A group is compared with the group of the previous config
that has its name, or else its endpoint (a renamed group serves the same callers). Groups
that are new, or gone, weaken nothing that was there.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_anything.config.groups import GroupConfig, RateLimitConfig
from mcp_anything.config.root import Config


@dataclass(frozen=True)
class Weakening:
    group: str
    what: str  # `inbound_auth.strategy becomes none (was jwt)`

    def __str__(self) -> str:
        return f"group {self.group!r}: {self.what}"


def weakenings(old: Config, new: Config) -> list[Weakening]:
    """What `new` loosens in the groups `old` serves, in config order; empty when nothing."""
    by_name = {g.name: g for g in old.groups}
    by_endpoint = {g.endpoint: g for g in old.groups}
    found: list[Weakening] = []
    for group in new.groups:
        before = by_name.get(group.name) or by_endpoint.get(group.endpoint)
        if before is not None:
            found += [Weakening(group.name, what) for what in _group_weakenings(before, group)]
    return found


def _group_weakenings(old: GroupConfig, new: GroupConfig) -> list[str]:
    found: list[str] = []
    if old.inbound_auth.strategy != "none" and new.inbound_auth.strategy == "none":
        found.append(f"inbound_auth.strategy becomes none (was {old.inbound_auth.strategy})")
    found += _authorization_weakenings(old, new)
    found += [f"rate limit {_limit(r)} removed or changed" for r in old.rate_limits if r not in new.rate_limits]
    return found


def _authorization_weakenings(old: GroupConfig, new: GroupConfig) -> list[str]:
    before, after = old.authorization, new.authorization
    found: list[str] = []
    if before.default == "deny" and after.default == "allow":
        found.append("authorization.default loosened from deny to allow")
    if before.capabilities is not None:
        if after.capabilities is None:
            found.append("authorization.capabilities removed")
        else:
            if before.capabilities.audience is not None and after.capabilities.audience is None:
                found.append("authorization.capabilities.audience removed")
            if before.capabilities.bind_subject and not after.capabilities.bind_subject:
                found.append("authorization.capabilities.bind_subject turned off")
    if before.rules and not after.rules:
        found.append("authorization.rules removed")
    else:
        found += [
            f"authorization deny rule {rule.when!r} removed or changed"
            for rule in before.rules
            if rule.effect == "deny" and rule not in after.rules
        ]
    return found


def _limit(rule: RateLimitConfig) -> str:
    tools = f" on {rule.tools}" if rule.tools is not None else ""
    return f"{rule.limit} per {rule.per}{tools}"
