"""What one caller may do on one endpoint: the `Grant` decided once per request.

The server uses the same grant to filter `tools/list` and to admit `tools/call`, so a
tool hidden from a caller can never be called by that caller. A refused call must get
the same error as an unknown tool.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from mcp_anything.authz import audit
from mcp_anything.identity import Identity
from mcp_anything.tools import Tool


class Forbidden(Exception):
    """The caller may not use this endpoint at all (HTTP 403); the message is shown to the caller."""


class Grant(Protocol):
    def filter_tools(self, tools: Collection[Tool]) -> Collection[Tool]:
        """The tools this caller may see, in order; writes one audit line. Never copies a definition."""
        ...

    def can_call(self, tool: Tool, arguments: Mapping[str, Any]) -> bool:
        """Whether this caller may call `tool` with `arguments`; writes one audit line."""
        ...


class AllowAllGrant:
    """The grant when no authorization is configured: every tool, every call, each decision still audited."""

    def __init__(self, group: str, identity: Identity) -> None:
        self.group = group
        self.identity = identity

    def filter_tools(self, tools: Collection[Tool]) -> Collection[Tool]:
        audit.listing(self.group, self.identity, len(tools), 0, reason="no authorization configured")
        return tools

    def can_call(self, tool: Tool, arguments: Mapping[str, Any]) -> bool:
        audit.call(self.group, self.identity, tool.name, True, rule=None, reason="no authorization configured")
        return True
