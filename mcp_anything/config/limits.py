"""`server.limits`: what one connection may hold and how long it may take before its request is complete.

The HTTP parser buffers a request head until it is complete, and a connection costs a file
descriptor until it closes; without these bounds one caller could hold memory or descriptors
without ever sending a request (see `server/guard.py`).
"""

from __future__ import annotations

from pydantic import ByteSize, Field, model_validator

from mcp_anything.config.types import PositiveDuration, StrictModel


class LimitsConfig(StrictModel):
    # The request line and headers together; a larger head is answered 431 and the connection closed.
    max_header_bytes: ByteSize = Field(default=ByteSize(64 * 1024), ge=1024)
    # From the connection's first byte (or the next request's) to the end of its head; then 408 and closed.
    header_timeout: PositiveDuration = 10.0
    # Open connections, overall and from one client address. At a cap the oldest connection still
    # sending its head makes room; when none is, the new connection is answered 503.
    max_connections: int = Field(default=1000, ge=1)
    max_connections_per_client: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _per_client_within_overall(self) -> LimitsConfig:
        if self.max_connections_per_client > self.max_connections:
            raise ValueError(
                f"max_connections_per_client ({self.max_connections_per_client}) cannot be more than"
                f" max_connections ({self.max_connections})"
            )
        return self
