"""Prometheus metrics: every series the gateway exports, and the small API the other parts call.

All metrics live in prometheus-client's default registry (so `/metrics` also carries the
process collector's `process_resident_memory_bytes`, `process_open_fds`, ...) and are
created once at import.

Under `serve --workers N` (N > 1) the supervisor sets `PROMETHEUS_MULTIPROC_DIR` before this
module is imported: prometheus-client then keeps every value in a per-process file there, and
`/metrics` on any worker sums the files of all workers (`MULTIPROCESS`). Counters and histograms
add up, dead workers' counts included; each gauge names how workers combine (`multiprocess_mode`).
The process collector's series are then those of every live process, with a `pid` label.

Hot paths never format labels per call: the server keeps one
`ToolMetrics` per tool, holding its label children; strategies keep one `TokenMetrics`
per token endpoint, made once at construction.

What other modules call:
- outbound client credentials, inbound introspection, JWKS:
  `tokens = token_metrics("client_credentials", endpoint)` once, then `tokens.fetched(ok)` per
  request to the endpoint and `tokens.cache_hit()` per answer from the cache;
- the app: `exposition(...)` at each scrape and, with --workers, `publish(...)` every PUBLISH_INTERVAL
  (sessions, streams and circuit states are read from the app, not pushed by those parts).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE_LATEST",
    "MULTIPROCESS",
    "NULL_TOOL_METRICS",
    "TokenMetrics",
    "ToolMetrics",
    "auth_failure",
    "exposition",
    "publish",
    "set_spec_findings",
    "token_metrics",
    "upstream_error",
]

# Read at import, as prometheus-client itself decides then whether values go to files.
MULTIPROCESS: Final = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _ReplicaProcessCollector(Collector):
    """`process_*` of every live process of the replica (supervisor and workers), labelled by `pid`.

    A process is live while its live-gauge file is there: `SESSIONS` writes one at import (the supervisor)
    and at each `publish` (a worker), and the supervisor removes a dead worker's with `mark_process_dead`.
    """

    def __init__(self, directory: str) -> None:
        self._directory = Path(directory)

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for file in self._directory.glob("gauge_livesum_*.db"):
            pid = file.stem.rpartition("_")[2]
            for family in _process_families(pid):
                merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                merged.samples += [s._replace(labels={**s.labels, "pid": pid}) for s in family.samples]
        return families.values()


def _process_families(pid: str) -> Iterable[Metric]:
    return ProcessCollector(pid=lambda: pid, registry=None).collect()


def _exposed_registry() -> CollectorRegistry:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # reads every worker's files at each scrape
    registry.register(_ReplicaProcessCollector(directory))
    return registry


_EXPOSED: Final = _exposed_registry()

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
    "Circuit breaker state per upstream: 1 for the current state, 0 for the others (with --workers: 1 if any"
    " worker's breaker is in that state).",
    ["upstream", "state"],
    multiprocess_mode="livemax",
)
RELOADS = Counter(
    "mcp_anything_config_reloads",
    "Config reloads by outcome (ok, error, refused: it would have weakened a group's security).",
    ["outcome"],
)
LAST_RELOAD = Gauge(
    "mcp_anything_config_last_reload_success_timestamp_seconds",
    "When the serving config was last loaded (with --workers: the latest of the workers).",
    multiprocess_mode="livemax",
)
SPEC_FINDINGS = Gauge(
    "mcp_anything_spec_findings",
    "What the loaded specs' tools approximate (findings, see `mcp-anything validate`), by upstream, kind and"
    " whether it changes what can be called (true, false).",
    ["upstream", "kind", "changes_calls"],
    multiprocess_mode="livemax",
)
# Set by `publish`: at each scrape, and with --workers by every worker each PUBLISH_INTERVAL (summed over live ones).
SESSIONS = Gauge(
    "mcp_anything_sessions",
    "2025-11-25-era sessions opened on this replica, not ended or expired.",
    multiprocess_mode="livesum",
)
STREAMS = Gauge(
    "mcp_anything_streams",
    "Open event streams (GET and subscriptions/listen) on this replica.",
    multiprocess_mode="livesum",
)
TASKS = Gauge(
    "mcp_anything_event_loop_tasks",
    "asyncio tasks alive on the serving event loops (one per worker).",
    multiprocess_mode="livesum",
)
PUBLISH_INTERVAL: Final = 1.0  # seconds: how stale another worker's sessions, streams and circuits can be


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


_shown_circuits: set[tuple[str, ...]] = set()
_shown_findings: set[tuple[str, ...]] = set()


def _replace(gauge: Gauge, shown: set[tuple[str, ...]], values: Mapping[tuple[str, ...], float]) -> None:
    """Sets `values` and drops the series set last time but not now.

    A dropped series is zeroed first: with --workers its value stays in this worker's file, where it would
    still count; there it reads 0, in a single process it is gone.
    """
    for labels in shown - values.keys():
        gauge.labels(*labels).set(0)
        gauge.remove(*labels)
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    shown.clear()
    shown.update(values)


def set_spec_findings(counts: Mapping[str, Mapping[tuple[str, bool], int]]) -> None:
    """The finding counts of every loaded spec: {upstream: {(kind, changes_calls): count}}; replaces the last."""
    values: dict[tuple[str, ...], float] = {
        (upstream, kind, "true" if changes_calls else "false"): count
        for upstream, by_kind in counts.items()
        for (kind, changes_calls), count in by_kind.items()
    }
    _replace(SPEC_FINDINGS, _shown_findings, values)


def publish(sessions: int, streams: int, circuits: Mapping[str, str]) -> None:
    """Sets the gauges read from the serving app; called on the event loop, so the task count is this loop's.

    `circuits`: each serving upstream's breaker state now (upstreams gone after a reload drop out).
    """
    SESSIONS.set(sessions)
    STREAMS.set(streams)
    TASKS.set(len(asyncio.all_tasks()))
    for state in circuits.values():
        if state not in BREAKER_STATES:
            raise ValueError(f"unknown circuit state {state!r}; expected one of {BREAKER_STATES}")
    values: dict[tuple[str, ...], float] = {
        (upstream, each): float(each == state) for upstream, state in circuits.items() for each in BREAKER_STATES
    }
    _replace(BREAKER_STATE, _shown_circuits, values)


def exposition(sessions: int, streams: int, circuits: Mapping[str, str]) -> bytes:
    """The text exposition of every metric (of every worker with --workers), after `publish` of the arguments."""
    publish(sessions, streams, circuits)
    return generate_latest(_EXPOSED)
