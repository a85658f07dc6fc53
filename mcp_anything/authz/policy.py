"""Grants: capabilities and rules combined, one decision for both `tools/list` and `tools/call`.

A tool must pass both the caller's capability allowance (when capabilities are
configured) and the rules. Every decision is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers

from mcp_anything.authz import audit
from mcp_anything.authz.capabilities import (
    NOTHING,
    Allowance,
    CapabilityError,
    CapabilitySource,
    ClaimCapabilities,
    HeaderCapabilities,
    load_public_key,
    server_names,
)
from mcp_anything.authz.grant import Forbidden
from mcp_anything.authz.rules import RequestRules, Rules, compile_rules
from mcp_anything.config import CapabilitiesConfig, ConfigError
from mcp_anything.identity import Identity
from mcp_anything.tools import Tool

if TYPE_CHECKING:
    from mcp_anything.config import AuthorizationConfig, Config, GroupConfig


def create(config: AuthorizationConfig, root: Config) -> PolicyAuthorizer:
    index, group = next((i, g) for i, g in enumerate(root.groups) if g.authorization is config)
    location = f"groups[{index}].authorization.capabilities"
    capabilities: CapabilitySource | None = None
    if config.capabilities is not None:
        try:
            servers = server_names([root.upstream(name) for name in group.upstreams])
        except ValueError as exc:
            raise ConfigError([f"{location}: {exc}; set distinct `capability_name`s"]) from None
        if config.capabilities.source == "claim":
            capabilities = ClaimCapabilities(config.capabilities.claim, servers)
        else:
            try:
                key = load_public_key(config.capabilities, root)
            except ValueError as exc:
                raise ConfigError([f"{location}.public_key: {exc}"]) from None
            capabilities = HeaderCapabilities(config.capabilities, key, servers)
    rules = compile_rules(config.rules, config.default, _secret_headers(config, group)) if config.rules else None
    return PolicyAuthorizer(capabilities, rules)


def _secret_headers(config: AuthorizationConfig, group: GroupConfig) -> list[str]:
    """Headers carrying credentials of this group, besides Authorization and cookies: rules never see them."""
    capabilities = config.capabilities
    hidden = [capabilities.header if capabilities is not None else CapabilitiesConfig.model_fields["header"].default]
    if group.inbound_auth.api_key is not None:
        hidden.append(group.inbound_auth.api_key.header)
    return hidden


class PolicyAuthorizer:
    def __init__(self, capabilities: CapabilitySource | None, rules: Rules | None) -> None:
        self.capabilities = capabilities
        self.rules = rules

    def grant(self, group: str, identity: Identity, headers: Headers) -> PolicyGrant:
        rules = None
        if self.rules is not None:
            rules = self.rules.evaluate(identity.claims, headers.items())
            if rules.closed_by is not None:
                rule, reason = rules.closed_by
                name, notes = (rule.name, rule.notes) if rule is not None else (None, "")
                audit.connect_refused(group, identity, rule=name, reason=reason, notes=notes)
                raise Forbidden("this endpoint is not available to you")
        allowance: Allowance | None = None
        refused: str | None = None
        if self.capabilities is not None:
            try:
                allowance = self.capabilities.allowance(identity, headers)
            except CapabilityError as exc:
                allowance, refused = NOTHING, f"capabilities: {exc}"
        return PolicyGrant(group, identity, allowance, refused, rules)


class PolicyGrant:
    def __init__(
        self,
        group: str,
        identity: Identity,
        allowance: Allowance | None,
        refused: str | None,
        rules: RequestRules | None,
    ) -> None:
        self.group = group
        self.identity = identity
        self.allowance = allowance
        self.refused = refused  # why the capability header or claim was not accepted
        self.rules = rules

    def _visible(self, tools: Iterable[Tool]) -> list[Tool]:
        # The allowance first: it usually leaves few tools for the rules.
        visible = list(tools) if self.allowance is None else self.allowance.granted(tools)
        return visible if self.rules is None else self.rules.listable(visible)

    def filter_tools(self, tools: Collection[Tool]) -> list[Tool]:
        visible = self._visible(tools)
        if audit.enabled():
            reason = self.refused
            if reason is None and self.allowance is not None and self.allowance.unknown_servers:
                reason = f"capabilities name unknown servers {list(self.allowance.unknown_servers)}"
            audit.listing(self.group, self.identity, len(visible), len(tools) - len(visible), reason=reason)
        return visible

    def can_call(self, tool: Tool, arguments: Mapping[str, Any]) -> bool:
        if self.allowance is not None and not self.allowance.granted((tool,)):
            reason = self.refused or "capabilities: tool not granted"
            audit.call(self.group, self.identity, tool.name, False, rule=None, reason=reason)
            return False
        if self.rules is None:
            audit.call(self.group, self.identity, tool.name, True, rule=None, reason="capabilities: tool granted")
            return True
        rule = self.rules.decide(tool, arguments)
        reason = self.rules.reason(rule)
        audit.call(self.group, self.identity, tool.name, not rule.deny, rule=rule.name, reason=reason, notes=rule.notes)
        return not rule.deny
