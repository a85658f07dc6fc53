"""Per-user tools: which tools a caller may see and call.

The server asks for one `Grant` per request and uses the same grant to filter
`tools/list` and to admit `tools/call`, so a tool hidden from a caller can never
be called by that caller. A refused call must get the same error as an unknown tool.

Capability claims (`capabilities.py`) and CEL rules (`rules.py`) are loaded only when
a group configures them; with neither, every caller gets every tool (`AllowAll`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.datastructures import Headers

from mcp_anything.authz import audit
from mcp_anything.identity import Identity
from mcp_anything.tools import Tool

if TYPE_CHECKING:
    from mcp_anything.config import AuthorizationConfig, Config


class Forbidden(Exception):
    """The caller may not use this endpoint at all (HTTP 403); the message is shown to the caller."""


class Grant(Protocol):
    def can_list(self, tool: Tool) -> bool: ...

    def filter_tools(self, tools: Collection[Tool]) -> Collection[Tool]:
        """The tools this caller may see, in order; writes one audit line. Never copies a definition."""
        ...

    def can_call(self, tool: Tool, arguments: Mapping[str, Any]) -> bool:
        """Whether this caller may call `tool` with `arguments`; writes one audit line."""
        ...


class Authorizer(Protocol):
    def grant(self, group: str, identity: Identity, headers: Headers) -> Grant:
        """Decide once per request; raise Forbidden when the endpoint itself is closed to the caller."""
        ...


class AllowAll:
    """No authorization configured: every authenticated caller sees and calls every tool of the group."""

    def grant(self, group: str, identity: Identity, headers: Headers) -> AllowAllGrant:
        return AllowAllGrant(group, identity)


class AllowAllGrant:
    def __init__(self, group: str, identity: Identity) -> None:
        self.group = group
        self.identity = identity

    def can_list(self, tool: Tool) -> bool:
        return True

    def filter_tools(self, tools: Collection[Tool]) -> Collection[Tool]:
        audit.listing(self.group, self.identity, len(tools), 0, reason="no authorization configured")
        return tools

    def can_call(self, tool: Tool, arguments: Mapping[str, Any]) -> bool:
        audit.call(self.group, self.identity, tool.name, True, rule=None, reason="no authorization configured")
        return True


def create_authorizer(config: AuthorizationConfig, root: Config) -> Authorizer:
    """The authorizer for the group whose `authorization` is `config`; raises ConfigError naming the key."""
    if config.capabilities is None and not config.rules:
        return AllowAll()
    from mcp_anything.authz.policy import create

    return create(config, root)
