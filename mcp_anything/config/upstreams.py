"""`upstreams[]`: an HTTP API described by OpenAPI, and how the gateway calls it."""

from __future__ import annotations

from typing import Literal

from pydantic import ByteSize, Field, field_validator, model_validator

from mcp_anything.config.outbound import OutboundAuthConfig
from mcp_anything.config.types import (
    Duration,
    HeaderName,
    HeaderValue,
    HttpUrl,
    Name,
    SecretHeaderValue,
    StrictModel,
)


class OpenApiConfig(StrictModel):
    source: str  # file path relative to the config file, or an http(s) URL
    headers: dict[HeaderName, SecretHeaderValue] = {}  # sent when fetching the spec by URL


HttpMethod = Literal["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST", "PATCH", "TRACE"]
IDEMPOTENT_METHODS: tuple[HttpMethod, ...] = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")


class RetryConfig(StrictModel):
    """Retries of one upstream request: only when the upstream cannot have acted on it, or said so."""

    attempts: int = Field(default=2, ge=0, le=10)  # retries after the first try; 0 turns retries off
    backoff: Duration = 0.1  # the first retry waits up to this long (full jitter), doubling for each later one
    statuses: list[int] = [502, 503, 504]
    methods: list[HttpMethod] = list(IDEMPOTENT_METHODS)

    @field_validator("statuses")
    @classmethod
    def _http_statuses(cls, statuses: list[int]) -> list[int]:
        bad = [s for s in statuses if not 400 <= s <= 599]
        if bad:
            raise ValueError(f"only 4xx and 5xx statuses can be retried, got {bad}")
        return statuses


class CircuitBreakerConfig(StrictModel):
    failures: int = Field(default=5, ge=0)  # consecutive failed calls that open the circuit; 0 turns it off
    reset_after: Duration = 30.0  # how long it stays open before one probe call is let through


class UpstreamConfig(StrictModel):
    name: Name
    type: Literal["http"] = "http"
    tool_prefix: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_-]*$")
    capability_name: str | None = None
    base_url: HttpUrl | None = None  # default: the spec's first server URL
    timeout: Duration = 30.0  # the whole call, retries included
    connect_timeout: Duration = 5.0  # establishing one TCP (and TLS) connection
    read_timeout: Duration | None = None  # the longest silence while waiting for response bytes; None: only `timeout`
    max_connections: int = Field(default=100, ge=1)
    max_response_bytes: ByteSize = ByteSize(10 * 1024 * 1024)
    # The most a result may carry for an agent to read; larger ones are cut (an operation's
    # `x-mcp-max-result-bytes` overrides it).
    max_result_bytes: ByteSize = Field(default=ByteSize(65536), ge=1024)
    retries: RetryConfig = RetryConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    headers: dict[HeaderName, HeaderValue] = {}
    openapi: OpenApiConfig
    overlays: list[str] = []
    include: list[str] = []
    exclude: list[str] = []
    server_variables: dict[str, str] = {}
    outbound_auth: OutboundAuthConfig = OutboundAuthConfig()
    # false: tools declare no outputSchema (for upstreams whose responses drift from their spec)
    output_schemas: bool = True
    # Each tool's `tools/list` entry is cut to fit (see README, "Compact tool definitions").
    max_tool_bytes: ByteSize = Field(default=ByteSize(8192), ge=1024)
    max_description_chars: int = Field(default=1024, ge=80)

    @property
    def prefix(self) -> str:
        return self.name if self.tool_prefix is None else self.tool_prefix

    @model_validator(mode="after")
    def _one_source_per_credential_header(self) -> UpstreamConfig:
        credential = self.outbound_auth.header
        if credential is not None and any(name.lower() == credential.lower() for name in self.headers):
            raise ValueError(
                f"`headers` sets {credential!r}, which outbound_auth ({self.outbound_auth.strategy}) also sets;"
                " keep the credential in outbound_auth only"
            )
        return self
