"""Which changes between two configs leave the gateway, or one of its groups, less protected than before.

The reloader refuses such a config unless it says `server.allow_weakening_reload: true`:
a security setting must not disappear because a file was edited in the wrong order, or
half-written when it was read. A group is compared with the group of the previous config
that has its name, or else its endpoint (a renamed group serves the same callers). Groups
that are new, or gone, weaken nothing that was there.

Any change of `inbound_auth.strategy` away from a real one counts, not only to `none`: another
strategy admits another set of callers, and which set is larger cannot be told from the config.
Capacity settings (`server.limits`, body sizes, timeouts) are not security and never count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from limits import parse as parse_rate

from mcp_anything.config.authz import CapabilitiesConfig
from mcp_anything.config.groups import GroupConfig, RateLimitConfig
from mcp_anything.config.inbound import InboundAuthConfig, JwtConfig
from mcp_anything.config.root import Config
from mcp_anything.config.server import ServerConfig


@dataclass(frozen=True)
class Weakening:
    group: str | None  # None: a `server` setting, which protects every group
    what: str  # `inbound_auth.strategy becomes none (was jwt)`

    def __str__(self) -> str:
        return f"group {self.group!r}: {self.what}" if self.group is not None else f"server: {self.what}"


def weakenings(old: Config, new: Config) -> list[Weakening]:
    """What `new` loosens of what `old` protects, server settings first, then groups in config order."""
    found = [Weakening(None, what) for what in _server_weakenings(old.server, new.server)]
    by_name = {g.name: g for g in old.groups}
    by_endpoint = {g.endpoint: g for g in old.groups}
    for group in new.groups:
        before = by_name.get(group.name) or by_endpoint.get(group.endpoint)
        if before is not None:
            found += [Weakening(group.name, what) for what in _group_weakenings(before, group)]
    return found


def _server_weakenings(old: ServerConfig, new: ServerConfig) -> list[str]:
    found = _widened("allowed_hosts", _lower(old.host_allowlist), _lower(new.host_allowlist))
    found += _widened("allowed_origins", _lower(old.origin_allowlist), _lower(new.origin_allowlist))
    if new.metrics.enabled and old.metrics.token is not None and new.metrics.token is None:
        found.append("metrics.token removed")
    elif new.metrics.exposed and not old.metrics.exposed:
        found.append("/metrics now served on the MCP port without a token")
    if old.sessions.revocations.get_secret_value() != "memory" == new.sessions.revocations.get_secret_value():
        # The redis URL may hold a password: it is never named.
        found.append("sessions.revocations moved from redis to memory (ended sessions stay usable on other replicas)")
    if _per_second(old.sessions.initialize_rate) < _per_second(new.sessions.initialize_rate):
        found.append(f"sessions.initialize_rate raised or removed (was {old.sessions.initialize_rate})")
    return found


def _group_weakenings(old: GroupConfig, new: GroupConfig) -> list[str]:
    found = _inbound_weakenings(old.inbound_auth, new.inbound_auth)
    found += _authorization_weakenings(old, new)
    found += [f"rate limit {_limit(r)} removed or changed" for r in old.rate_limits if r not in new.rate_limits]
    return found


def _inbound_weakenings(old: InboundAuthConfig, new: InboundAuthConfig) -> list[str]:
    if old.strategy == "none":
        return []
    if new.strategy == "none":
        return [f"inbound_auth.strategy becomes none (was {old.strategy})"]
    if new.strategy != old.strategy:
        return [f"inbound_auth.strategy changed from {old.strategy} to {new.strategy}"]
    found: list[str] = []
    if old.jwt is not None and new.jwt is not None:
        found += _token_check_weakenings("inbound_auth.jwt", old.jwt, new.jwt)
        if new.jwt.jwks_url != old.jwt.jwks_url:
            found.append("inbound_auth.jwt.jwks_url changed (tokens are verified with other keys)")
        found += _dropped("inbound_auth.jwt.required_claims", old.jwt.required_claims, new.jwt.required_claims)
        found += _dropped("inbound_auth.jwt.required_scopes", old.jwt.required_scopes, new.jwt.required_scopes)
    if old.introspection is not None and new.introspection is not None:
        before, after = old.introspection, new.introspection
        if after.endpoint != before.endpoint:
            found.append("inbound_auth.introspection.endpoint changed (another server vouches for tokens)")
        found += _dropped("inbound_auth.introspection.required_scopes", before.required_scopes, after.required_scopes)
    return found


def _token_check_weakenings(
    prefix: str, old: JwtConfig | CapabilitiesConfig, new: JwtConfig | CapabilitiesConfig
) -> list[str]:
    """The checks a verified JWT (an inbound token or a wristband) passes: who signed it, for whom, how."""
    found: list[str] = []
    if old.issuer is not None and new.issuer != old.issuer:
        found.append(f"{prefix}.issuer changed or removed (was {old.issuer})")
    if old.audience is not None:
        if new.audience is None:
            found.append(f"{prefix}.audience removed")
        else:
            # Any listed audience matches, so each value added admits more tokens.
            found += _widened(f"{prefix}.audience", _listed(old.audience), _listed(new.audience))
    found += _widened(f"{prefix}.algorithms", old.algorithms, new.algorithms)
    if new.leeway > old.leeway:
        found.append(f"{prefix}.leeway raised from {old.leeway:g}s to {new.leeway:g}s")
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
            found += _capabilities_weakenings(before.capabilities, after.capabilities)
    if before.rules and not after.rules:
        found.append("authorization.rules removed")
    else:
        found += [
            f"authorization deny rule {rule.when!r} removed or changed"
            for rule in before.rules
            if rule.effect == "deny" and rule not in after.rules
        ]
    return found


def _capabilities_weakenings(old: CapabilitiesConfig, new: CapabilitiesConfig) -> list[str]:
    found = _token_check_weakenings("authorization.capabilities", old, new)
    if old.bind_subject and not new.bind_subject:
        found.append("authorization.capabilities.bind_subject turned off")
    if old.max_lifetime is not None and (new.max_lifetime is None or new.max_lifetime > old.max_lifetime):
        found.append(f"authorization.capabilities.max_lifetime raised or removed (was {old.max_lifetime:g}s)")
    return found


def _widened(key: str, old: Sequence[str], new: Sequence[str]) -> list[str]:
    """Entries of an allowlist: each one `new` adds is let in where it was not before."""
    added = [value for value in new if value not in old]
    return [f"{key} widened: adds {added}"] if added else []


def _dropped(key: str, old: Sequence[str], new: Sequence[str]) -> list[str]:
    """Entries of a requirement: each one `new` drops is no longer asked of a caller."""
    dropped = [value for value in old if value not in new]
    return [f"{key} reduced: drops {dropped}"] if dropped else []


def _lower(names: list[str]) -> list[str]:
    """Host names and origins are case-insensitive (and `origins.py` compares them lowercased)."""
    return [name.lower().rstrip("/") for name in names]


def _listed(audience: str | list[str]) -> list[str]:
    return [audience] if isinstance(audience, str) else audience


def _per_second(rate: str | None) -> float:
    if rate is None:
        return float("inf")
    item = parse_rate(rate)
    return item.amount / item.get_expiry()


def _limit(rule: RateLimitConfig) -> str:
    tools = f" on {rule.tools}" if rule.tools is not None else ""
    return f"{rule.limit} per {rule.per}{tools}"
