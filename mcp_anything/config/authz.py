"""`groups[].authorization`: which tools each caller may list and call."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, field_validator, model_validator

from mcp_anything.config.expressions import compile_expression, uses_tool
from mcp_anything.config.types import AsymmetricAlgorithms, Audience, Duration, HeaderName, StrictModel


class CapabilitiesConfig(StrictModel):
    """Which tools each caller may use, from a signed capability claim (Kuadrant MCP Gateway's wristband)."""

    # header: verify the signed JWT in `header`; claim: read `claim` from the verified inbound identity.
    source: Literal["header", "claim"] = "header"
    header: HeaderName = "x-mcp-authorized"
    public_key: SecretStr | None = None  # a PEM file path (relative to the config), or the PEM itself (from ${ENV})
    algorithms: AsymmetricAlgorithms = ["ES256"]
    issuer: str | None = None  # checked against `iss` when set
    leeway: Duration = 30.0  # clock skew allowed on exp, nbf and iat
    claim: str = "allowed-capabilities"
    # What binds a wristband to this gateway and this caller, so a leaked one cannot be replayed elsewhere:
    audience: Audience | None = None  # checked against `aud` when set (a group's own audience)
    bind_subject: bool = False  # the wristband's `sub` must be the authenticated caller's subject
    # The longest `exp - iat` accepted (`iat` is then required); null accepts any lifetime.
    max_lifetime: Duration | None = 300.0

    @model_validator(mode="after")
    def _keys_fit_source(self) -> CapabilitiesConfig:
        if self.source == "header" and self.public_key is None:
            raise ValueError("`public_key` is required with source: header (an unverified header is never trusted)")
        header_only = sorted(set(_HEADER_ONLY) & self.model_fields_set)
        if self.source == "claim" and header_only:
            raise ValueError(f"{header_only} only apply to source: header (with source: claim, inbound auth verifies)")
        return self

    @property
    def unbound(self) -> bool:
        """A header wristband bound to neither an audience nor the caller: valid at any group, for anyone."""
        return self.source == "header" and self.audience is None and not self.bind_subject


_HEADER_ONLY = ("header", "public_key", "algorithms", "issuer", "leeway", "audience", "bind_subject", "max_lifetime")


class RuleConfig(StrictModel):
    effect: Literal["allow", "deny"]
    # A CEL expression over `jwt`, `request.headers` and, for calls, `mcp.tool` (name, arguments, method,
    # path, upstream, tags).
    when: str = "true"
    tools: list[str] | None = None  # glob patterns on tool names; None: the rule gates the whole endpoint
    # Among the matching rules the audit line reports the lowest priority (then the first); a deny still wins.
    priority: int = 0
    notes: str = ""  # logged with the decision when this rule is the one reported

    @field_validator("when")
    @classmethod
    def _compiles(cls, when: str) -> str:
        compile_expression(when)
        return when

    @field_validator("tools")
    @classmethod
    def _not_empty(cls, tools: list[str] | None) -> list[str] | None:
        if tools == []:
            raise ValueError("an empty list matches no tool; omit `tools` to gate the whole endpoint")
        return tools

    @model_validator(mode="after")
    def _endpoint_rules_see_only_jwt(self) -> RuleConfig:
        if self.tools is None and uses_tool(self.when):
            raise ValueError(
                "a rule without `tools` decides who may connect, before any tool is known, so its `when` "
                "cannot use mcp.tool; add `tools: ['*']` to check every call instead"
            )
        return self


class AuthorizationConfig(StrictModel):
    default: Literal["allow", "deny"] = "allow"  # when no rule matches a tool
    capabilities: CapabilitiesConfig | None = None
    rules: list[RuleConfig] = []

    @model_validator(mode="after")
    def _deny_needs_rules(self) -> AuthorizationConfig:
        if self.default == "deny" and not self.rules:
            raise ValueError("default: deny without rules refuses every tool to everyone; add allow `rules`")
        return self
