"""Choosing a group's authorizer: one `Grant` per request, from capabilities, rules, or neither.

Capability claims (`capabilities.py`) and CEL rules (`rules.py`) are loaded only when
a group configures them; with neither, every caller gets every tool (`AllowAll`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.datastructures import Headers

from mcp_anything.authz.grant import AllowAllGrant, Grant
from mcp_anything.identity import Identity

if TYPE_CHECKING:
    from mcp_anything.config import AuthorizationConfig, Config


class Authorizer(Protocol):
    def grant(self, group: str, identity: Identity, headers: Headers) -> Grant:
        """Decide once per request; raise Forbidden when the endpoint itself is closed to the caller."""
        ...


class AllowAll:
    """No authorization configured: every authenticated caller sees and calls every tool of the group."""

    def grant(self, group: str, identity: Identity, headers: Headers) -> AllowAllGrant:
        return AllowAllGrant(group, identity)


def create_authorizer(config: AuthorizationConfig, root: Config) -> Authorizer:
    """The authorizer for the group whose `authorization` is `config`; raises ConfigError naming the key."""
    if config.capabilities is None and not config.rules:
        return AllowAll()
    from mcp_anything.authz.policy import create

    return create(config, root)
