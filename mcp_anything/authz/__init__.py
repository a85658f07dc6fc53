"""Per-user tools: which tools a caller may see and call.

The server asks for one `Grant` per request and uses the same grant to filter
`tools/list` and to admit `tools/call`, so a tool hidden from a caller can never
be called by that caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.datastructures import Headers

from mcp_anything.identity import Identity
from mcp_anything.tools import Tool

if TYPE_CHECKING:
    from mcp_anything.config import AuthorizationConfig, Config


class Forbidden(Exception):
    """The caller may not use this endpoint at all (HTTP 403); the message is shown to the caller."""


class Grant(Protocol):
    def can_list(self, tool: Tool) -> bool: ...

    def can_call(self, tool: Tool, arguments: Mapping[str, Any]) -> bool: ...


class Authorizer(Protocol):
    def grant(self, group: str, identity: Identity, headers: Headers) -> Grant:
        """Decide once per request; raise Forbidden when the endpoint itself is closed to the caller."""
        ...


class AllowAll:
    """Every authenticated caller sees and calls every tool of the group."""

    def can_list(self, tool: Tool) -> bool:
        return True

    def can_call(self, tool: Tool, arguments: Mapping[str, Any]) -> bool:
        return True

    def grant(self, group: str, identity: Identity, headers: Headers) -> AllowAll:
        return self


def create_authorizer(config: AuthorizationConfig, root: Config) -> Authorizer:
    return AllowAll()
