"""`groups[]`: an MCP endpoint serving some upstreams' tools, with its own auth and limits."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from mcp_anything.config.authz import AuthorizationConfig
from mcp_anything.config.discovery import DiscoveryConfig
from mcp_anything.config.filters import ResponseFilter
from mcp_anything.config.inbound import InboundAuthConfig
from mcp_anything.config.types import Name, Rate, StrictModel


class RateLimitConfig(StrictModel):
    """One limit on a group's tool calls, counted per caller, per tool, or per caller and tool."""

    per: Literal["subject", "tool", "subject_tool"]
    limit: Rate
    tools: list[str] | None = None  # glob patterns on tool names; None: every tool of the group


def _written_out(block: Any) -> Any:
    if block is None:
        raise ValueError("required; write `strategy: none` to serve this group without authentication")
    return block


class GroupConfig(StrictModel):
    name: Name
    endpoint: str = "/mcp"
    upstreams: list[str]
    # Required, even to say `strategy: none`: a group whose block is missing (a typo, a config written
    # half-way when it was read) must not serve without authentication.
    inbound_auth: Annotated[InboundAuthConfig, BeforeValidator(_written_out)] = Field(
        default=None, validate_default=True
    )
    authorization: AuthorizationConfig = AuthorizationConfig()
    rate_limits: list[RateLimitConfig] = []
    # What each caller sees of the upstreams' JSON answers; applied in order, each on the previous one's output.
    response_filters: list[ResponseFilter] = []
    discovery: DiscoveryConfig = DiscoveryConfig()

    @field_validator("endpoint")
    @classmethod
    def _endpoint_path(cls, endpoint: str) -> str:
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", endpoint):
            raise ValueError(f"expected a path such as /mcp or /team/mcp, got {endpoint!r}")
        return endpoint
