"""`strategy: bearer`: a static token sent as `Authorization: Bearer <token>` (RFC 6750 §2.1)."""

from __future__ import annotations

from mcp_anything.config import Config, OutboundAuthConfig
from mcp_anything.outbound.base import set_header
from mcp_anything.tools import HttpRequest


class BearerAuth:
    def __init__(self, token: str) -> None:
        self._authorization = f"Bearer {token}"  # built once, not per call

    def __repr__(self) -> str:
        return "BearerAuth(token='**********')"

    async def apply(self, request: HttpRequest) -> None:
        set_header(request, "Authorization", self._authorization)

    async def refresh(self, refused: HttpRequest | None = None) -> bool:
        return False  # the same static token would be refused again

    async def aclose(self) -> None:
        pass


def create(config: OutboundAuthConfig, root: Config) -> BearerAuth:
    assert config.bearer is not None  # guaranteed by OutboundAuthConfig validation
    return BearerAuth(config.bearer.token.get_secret_value())
