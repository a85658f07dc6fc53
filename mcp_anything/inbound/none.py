"""`strategy: none`: every caller is anonymous."""

from __future__ import annotations

from mcp_anything.config import Config, InboundAuthConfig
from mcp_anything.identity import ANONYMOUS, Identity
from mcp_anything.inbound.base import InboundRequest


class NoAuth:
    authorization_servers: list[str] = []

    async def authenticate(self, request: InboundRequest) -> Identity:
        return ANONYMOUS

    async def aclose(self) -> None:
        pass


def create(config: InboundAuthConfig, root: Config) -> NoAuth:
    return NoAuth()
