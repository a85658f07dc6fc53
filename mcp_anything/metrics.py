"""Prometheus metrics: every series the gateway exports, and the small API the other parts call.

All metrics live in prometheus-client's default registry (so `/metrics` also carries the
process collector's `process_resident_memory_bytes`, `process_open_fds`, ...) and are
created once at import. Hot paths never format labels per call: the server keeps one
`ToolMetrics` per tool, holding its label children; strategies keep one `TokenMetrics`
per token endpoint, made once at construction.

What other modules call:
- outbound client credentials, inbound introspection, JWKS:
  `tokens = token_metrics("client_credentials", endpoint)` once, then `tokens.fetched(ok)` per
  request to the endpoint and `tokens.cache_hit()` per answer from the cache;
- circuit breakers: their states are read at each scrape (`exposition`); `set_breaker_state` sets one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "CONTENT_TYPE_LATEST",
    "NULL_TOOL_METRICS",
    "TokenMetrics",
    "ToolMetrics",
    "auth_failure",
    "exposition",
    "set_breaker_state",
    "set_spec_findings",
    "token_metrics",
    "upstream_error",
]

# Latency buckets from 2.5 ms (the gateway's own overhead is ~0.5 ms) to 30 s (the default upstream timeout).
LATENCY_BUCKETS: Final = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

TOOL_CALLS = Counter(
    "mcp_anything_tool_calls",
    "Admitted tools/call requests by group, tool and outcome"
    " (ok, error, invalid_arguments, rate_limited; refused calls answer like unknown tools and are not counted).",
    ["group", "tool", "outcome"],
)
TOOL_CALL_SECONDS = Histogram(
    "mcp_anything_tool_call_duration_seconds",
    "Time from an admitted tools/call to its result, upstream call included (rate-limited calls excluded).",
    ["group", "tool"],
    buckets=LATENCY_BUCKETS,
)
AUTH_FAILURES = Counter(
    "mcp_anything_auth_failures",
    "Requests refused by inbound authentication, by group and reason (the OAuth error code).",
    ["group", "reason"],
)
AUTHZ_REFUSALS = Counter(
    "mcp_anything_authz_refusals",
    "Requests refused by authorization, by group and action: call (a tool call refused), list (every tool"
    " hidden from the caller), connect (the caller may not use the group at all).",
    ["group", "action"],
)
UPSTREAM_ERRORS = Counter(
    "mcp_anything_upstream_errors",
    "Upstream calls that failed, by upstream and status: an HTTP status code, or circuit_open (failed fast),"
    " connect, timeout, too_large, outbound_auth, request.",
    ["upstream", "status"],
)
TOKEN_FETCHES = Counter(
    "mcp_anything_token_fetches",
    "Requests to a token, introspection or JWKS endpoint, by kind, endpoint and outcome (ok, error).",
    ["kind", "endpoint", "outcome"],
)
TOKEN_CACHE_HITS = Counter(
    "mcp_anything_token_cache_hits",
    "Tokens, introspection results or keys answered from the cache instead of the endpoint.",
    ["kind", "endpoint"],
)
BREAKER_STATES: Final = ("closed", "open", "half_open")
BREAKER_STATE = Gauge(
    "mcp_anything_upstream_circuit",
    "Circuit breaker state per upstream: 1 for the current state, 0 for the others.",
    ["upstream", "state"],
)
RELOADS = Counter(
    "mcp_anything_config_reloads",
    "Config reloads by outcome (ok, error, refused: it would have weakened a group's security).",
    ["outcome"],
)
LAST_RELOAD = Gauge(
    "mcp_anything_config_last_reload_success_timestamp_seconds", "When the serving config was last loaded."
)
SPEC_FINDINGS = Gauge(
    "mcp_anything_spec_findings",
    "What the loaded specs' tools approximate (findings, see `mcp-anything validate`), by upstream, kind and"
    " whether it changes what can be called (true, false).",
    ["upstream", "kind", "changes_calls"],
)
SESSIONS = Gauge("mcp_anything_sessions", "2025-11-25-era sessions opened on this replica, not ended or expired.")
STREAMS = Gauge("mcp_anything_streams", "Open event streams (GET and subscriptions/listen) on this replica.")
TASKS = Gauge("mcp_anything_event_loop_tasks", "asyncio tasks alive on the serving event loop.")


class ToolMetrics:
    """One tool's series in one group; made on the tool's first call, then only incremented."""

    __slots__ = ("_group", "_latency", "_outcomes", "_tool")

    def __init__(self, group: str, tool: str) -> None:
        self._group = group
        self._tool = tool
        self._latency = TOOL_CALL_SECONDS.labels(group, tool)
        self._outcomes: dict[str, Counter] = {}

    def record(self, outcome: str, seconds: float | None) -> None:
        counter = self._outcomes.get(outcome)
        if counter is None:
            counter = self._outcomes[outcome] = TOOL_CALLS.labels(self._group, self._tool, outcome)
        counter.inc()
        if seconds is not None:
            self._latency.observe(seconds)


class _NullToolMetrics:
    """What the server records into when `server.metrics` is off."""

    __slots__ = ()

    def record(self, outcome: str, seconds: float | None) -> None:
        pass


NULL_TOOL_METRICS: Final = _NullToolMetrics()


class TokenMetrics:
    """One token endpoint's fetch and cache-hit counters."""

    __slots__ = ("_error", "_hit", "_ok")

    def __init__(self, kind: str, endpoint: str) -> None:
        self._ok = TOKEN_FETCHES.labels(kind, endpoint, "ok")
        self._error = TOKEN_FETCHES.labels(kind, endpoint, "error")
        self._hit = TOKEN_CACHE_HITS.labels(kind, endpoint)

    def fetched(self, ok: bool) -> None:
        (self._ok if ok else self._error).inc()

    def cache_hit(self) -> None:
        self._hit.inc()


def token_metrics(kind: str, endpoint: str) -> TokenMetrics:
    """`kind`: client_credentials, introspection or jwks; `endpoint`: its URL (labelled without userinfo or query)."""
    parts = urlsplit(endpoint)
    return TokenMetrics(kind, f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}")


def auth_failure(group: str, reason: str) -> None:
    AUTH_FAILURES.labels(group, reason).inc()


def upstream_error(upstream: str, status: str) -> None:
    UPSTREAM_ERRORS.labels(upstream, status).inc()


def set_breaker_state(upstream: str, state: str) -> None:
    """`state`: closed, open or half_open."""
    if state not in BREAKER_STATES:
        raise ValueError(f"unknown circuit state {state!r}; expected one of {BREAKER_STATES}")
    for each in BREAKER_STATES:
        BREAKER_STATE.labels(upstream, each).set(1 if each == state else 0)


def set_spec_findings(counts: Mapping[str, Mapping[tuple[str, bool], int]]) -> None:
    """The finding counts of every loaded spec: {upstream: {(kind, changes_calls): count}}; replaces the last."""
    SPEC_FINDINGS.clear()
    for upstream, by_kind in counts.items():
        for (kind, changes_calls), count in by_kind.items():
            SPEC_FINDINGS.labels(upstream, kind, "true" if changes_calls else "false").set(count)


def exposition(sessions: int, streams: int, circuits: Mapping[str, str]) -> bytes:
    """The text exposition of every metric; called on the event loop, so the task count is this loop's.

    `circuits`: each serving upstream's breaker state now (upstreams gone after a reload drop out).
    """
    SESSIONS.set(sessions)
    STREAMS.set(streams)
    TASKS.set(len(asyncio.all_tasks()))
    BREAKER_STATE.clear()
    for upstream, state in circuits.items():
        set_breaker_state(upstream, state)
    return generate_latest(REGISTRY)
