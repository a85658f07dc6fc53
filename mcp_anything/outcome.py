"""`CallOutcome`: what one `tools/call` came to, passed unchanged from the upstream to the call log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class CallOutcome:
    """One `tools/call`: its MCP result and what the breaker, metrics, tracing and the call log need.

    Made once (by the upstream, or by the handler when the gateway answers itself) and passed on unchanged.
    """

    result: dict[str, Any]
    status: int | None = None  # upstream HTTP status; None when no response arrived
    failure: str | None = None  # why this call counts as an upstream failure (circuit breaker)
    # The `status` label of mcp_anything_upstream_errors_total when the call failed: a non-2xx status
    # ("404"), or circuit_open, outbound_auth, too_large, connect, timeout, request.
    error: str | None = None
    # Set when the gateway answered without the upstream: invalid_arguments, rate_limited, error (internal).
    refused: str | None = None

    @property
    def outcome(self) -> str:
        """The call log's and metrics' outcome: ok, error, invalid_arguments or rate_limited."""
        if self.refused is not None:
            return self.refused
        return "error" if self.result.get("isError") else "ok"
