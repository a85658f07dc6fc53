"""`strategy: none`: the upstream is called without credentials."""

from __future__ import annotations

from mcp_anything.config import Config, OutboundAuthConfig
from mcp_anything.tools import HttpRequest


class NoOutboundAuth:
    async def apply(self, request: HttpRequest) -> None:
        pass

    async def refresh(self, refused: HttpRequest | None = None) -> bool:
        return False

    async def aclose(self) -> None:
        pass


def create(config: OutboundAuthConfig, root: Config) -> NoOutboundAuth:
    return NoOutboundAuth()
