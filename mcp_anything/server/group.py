"""One group: an MCP endpoint with its tools, upstreams, authentication and authorization, built once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from mcp_anything.authz import Authorizer
from mcp_anything.config import GroupConfig
from mcp_anything.discovery import Catalog
from mcp_anything.identity import Identity
from mcp_anything.inbound import Authenticator
from mcp_anything.openapi.validation import SchemaCompiler
from mcp_anything.outcome import CallOutcome
from mcp_anything.ratelimit import RateLimits
from mcp_anything.server.shape import CallerView, ToolFilters, tool_filters
from mcp_anything.shaping import compile_filters
from mcp_anything.tools import HttpRequest, Tool

PRM_PREFIX = "/.well-known/oauth-protected-resource"


class Caller(Protocol):
    """What sends a tool's request (`upstream.Upstream`): the MCP side needs nothing else of it."""

    async def call(self, tool: Tool, request: HttpRequest, view: CallerView | None = None) -> CallOutcome: ...


@dataclass
class Group:
    """One MCP endpoint: its tools (built once), auth and authorization."""

    config: GroupConfig
    tools: dict[str, Tool]
    upstreams: dict[str, Caller]  # by upstream name; an upstream whose spec loads late is added
    authenticator: Authenticator
    authorizer: Authorizer
    public_url: str  # the server's public base URL
    rate_limits: RateLimits | None = None
    # Each tool's `tools/list` entry, serialised once (a filtered tool's with its relaxed outputSchema).
    listings: dict[str, orjson.Fragment] = field(init=False)
    # The tools `response_filters` apply to, with what they make of each.
    filtered: dict[str, ToolFilters] = field(init=False)
    catalog: Catalog = field(init=False)  # discovery: the search index and what search mode shows

    def __post_init__(self) -> None:
        self._filters = compile_filters(self.config.response_filters)
        self.set_tools(self.tools)

    def set_tools(self, tools: dict[str, Tool]) -> None:
        """Replace the tools (an upstream whose spec loaded late); requests see the old set or the new one."""
        filtered = tool_filters(self._filters, tools, SchemaCompiler()) if self._filters else {}
        listings = {
            name: orjson.Fragment(orjson.dumps(filtered[name].definition if name in filtered else t.definition))
            for name, t in tools.items()
        }
        catalog = Catalog(self.config.discovery, tools)
        self.listings, self.filtered, self.catalog, self.tools = listings, filtered, catalog, tools

    def caller_view(self, tool: Tool, identity: Identity) -> CallerView | None:
        """The group's response filters on `tool` for this caller; None when none apply."""
        filters = self.filtered.get(tool.name)
        return None if filters is None else CallerView(tool.name, filters, identity.claims)

    @property
    def resource_url(self) -> str:
        return self.public_url + self.config.endpoint

    @property
    def metadata_url(self) -> str | None:
        """Where this group's RFC 9728 protected resource metadata is served, if it has any."""
        if not self.authenticator.authorization_servers:
            return None
        return self.public_url + PRM_PREFIX + self.config.endpoint

    @property
    def personalised(self) -> bool:
        """Whether what a caller sees can depend on who the caller is."""
        authorization = self.config.authorization
        return (
            self.config.inbound_auth.strategy != "none"
            or authorization.capabilities is not None
            or bool(authorization.rules)
            or authorization.default == "deny"
        )

    def protected_resource_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "resource": self.resource_url,
            "authorization_servers": self.authenticator.authorization_servers,
            "bearer_methods_supported": ["header"],
        }
        scopes = getattr(self.authenticator, "scopes_supported", None)
        if scopes:
            metadata["scopes_supported"] = scopes
        return metadata
