"""Upstream faults end to end: down, slow, garbage, huge, flaky; retries, the circuit breaker, late specs.

A real gateway, the real recording upstream misbehaving on purpose (tests/support/upstream.py,
tests/specs/faults.yaml) and the official MCP client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mcp_anything.app import build
from mcp_anything.app.build import build_gateway
from mcp_anything.config import ConfigError, parse_config
from tests.support.gateway import GatewayFactory
from tests.support.mcp import INITIALIZE, mcp_client
from tests.support.openapi import SPECS
from tests.support.servers import Blackhole, ServerThread, free_port
from tests.support.upstream import RecordingUpstream

pytestmark = pytest.mark.anyio


def faults_config(upstream_url: str, **overrides: Any) -> dict[str, Any]:
    """tests/specs/faults.yaml served from `upstream_url` as group `default` at /mcp."""
    upstream = {
        "name": "faults",
        "tool_prefix": "",
        "base_url": upstream_url,
        "timeout": "5s",
        "openapi": {"source": "faults.yaml"},
        "retries": {"attempts": 0},
        "circuit_breaker": {"failures": 0},
        **overrides,
    }
    return {
        "groups": [
            {"name": "default", "endpoint": "/mcp", "upstreams": ["faults"], "inbound_auth": {"strategy": "none"}}
        ],
        "upstreams": [upstream],
    }


def text(result: Any) -> str:
    return result.content[0].text


# --- down, slow --------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_upstream_down_is_an_error_result_naming_it(gateway: GatewayFactory) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with gateway(faults_config(closed)) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("get_status", {"code": 200})
    assert result.is_error
    assert f"Could not connect to upstream 'faults' at {closed}: connection refused (GET /status/{{code}})" in text(
        result
    )


@pytest.mark.slow
async def test_connect_timeout_is_separate_from_the_total(gateway: GatewayFactory) -> None:
    with Blackhole() as unreachable, gateway(faults_config(unreachable, connect_timeout="300ms")) as url:
        async with mcp_client(url + "/mcp") as client:
            started = time.monotonic()
            result = await client.call_tool("get_status", {"code": 200})
            elapsed = time.monotonic() - started
    assert result.is_error and "no connection within 0.3s" in text(result), text(result)
    assert elapsed < 2, "the connect timeout, not the 5s total, ended the call"


@pytest.mark.slow
async def test_read_timeout_and_total_timeout(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(faults_config(upstream_url, read_timeout="300ms")) as url:
        async with mcp_client(url + "/mcp") as client:
            silent = await client.call_tool("get_slow", {"seconds": 2})
            quick = await client.call_tool("get_slow", {"seconds": 0.05})
    assert silent.is_error and "stopped sending: no data for 0.3s (read_timeout)" in text(silent), text(silent)
    assert quick.is_error is False

    with gateway(faults_config(upstream_url, timeout="400ms")) as url:
        async with mcp_client(url + "/mcp") as client:
            slow = await client.call_tool("get_slow", {"seconds": 2})
    assert slow.is_error and "did not respond within 0.4s" in text(slow)


@pytest.mark.slow
async def test_the_connection_pool_is_bounded(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    for _ in range(100):  # slow requests abandoned by earlier tests may still be sleeping upstream
        if not upstream.in_flight:
            break
        await asyncio.sleep(0.05)
    upstream.peak_in_flight = 0
    with gateway(faults_config(upstream_url, max_connections=2)) as url:
        async with mcp_client(url + "/mcp") as client:
            started = time.monotonic()
            results = await asyncio.gather(*(client.call_tool("get_slow", {"seconds": 0.4}) for _ in range(4)))
            elapsed = time.monotonic() - started
    assert all(r.is_error is False for r in results)
    assert upstream.peak_in_flight == 2, "calls past max_connections wait for a pooled connection"
    assert elapsed >= 0.8


def test_retry_and_breaker_settings_are_checked() -> None:
    raw = faults_config("http://127.0.0.1:9", retries={"attempt": 2, "statuses": [200]})
    with pytest.raises(ConfigError) as error:
        parse_config(raw, base_dir=SPECS, env={})
    assert error.value.problems == [
        "upstreams[0].retries.statuses: only 4xx and 5xx statuses can be retried, got [200]",
        "upstreams[0].retries.attempt: unknown key (check the spelling; see config.example.yaml)",
    ]
    raw = faults_config("http://127.0.0.1:9", retries={"methods": ["FETCH"]}, circuit_breaker={"reset_after": "soon"})
    with pytest.raises(ConfigError) as error:
        parse_config(raw, base_dir=SPECS, env={})
    assert error.value.problems[0].startswith("upstreams[0].retries.methods[0]: Input should be 'GET', 'HEAD'")
    assert error.value.problems[1] == (
        "upstreams[0].circuit_breaker.reset_after: expected a duration such as 30s, 100ms or 2m, got 'soon'"
    )


# --- garbage, huge ---------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_garbage_responses_are_results_not_crashes(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(faults_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            garbage = await client.call_tool("get_garbage", {})
            truncated = await client.call_tool("get_truncated", {})
            reset = await client.call_tool("get_reset", {})
            after = await client.call_tool("get_status", {"code": 200})
    assert garbage.is_error
    assert "Upstream 'faults' sent invalid application/json for GET /garbage" in text(garbage), text(garbage)
    assert text(garbage).endswith(': {"truncated": [1, 2,')
    for cut in (truncated, reset):
        assert cut.is_error
        assert "Upstream 'faults' closed the connection before the whole response arrived" in text(cut), text(cut)
    assert after.is_error is False, "the gateway keeps serving"


@pytest.mark.slow
async def test_response_size_cap(gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str) -> None:
    with gateway(faults_config(upstream_url, max_response_bytes="1MiB", max_result_bytes="2MiB")) as url:
        async with mcp_client(url + "/mcp") as client:
            fits = await client.call_tool("get_big", {"bytes": 1024 * 1024, "chunked": 1})
            declared = await client.call_tool("get_big", {"bytes": 1024 * 1024 + 1})
            started = time.monotonic()
            endless = await client.call_tool("get_endless", {})
            elapsed = time.monotonic() - started
    assert fits.is_error is False and len(text(fits)) == 1024 * 1024
    for too_big in (declared, endless):
        assert too_big.is_error and "response exceeds 1048576 bytes (GET /" in text(too_big), text(too_big)
    # An endless body ends the call at the cap: the gateway stops reading and drops the connection.
    assert elapsed < 3
    assert upstream.endless_stopped.wait(5), "the upstream saw the gateway go away"


# --- retries -------------------------------------------------------------------------------------------


def _attempts(upstream: RecordingUpstream, key: str) -> int:
    return sum(1 for r in upstream.requests if r.path == "/flaky" and ("key", key) in r.query)


@pytest.mark.slow
async def test_idempotent_calls_retry_on_503(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    retries = {"attempts": 2, "backoff": "10ms"}
    with gateway(faults_config(upstream_url, retries=retries)) as url:
        async with mcp_client(url + "/mcp") as client:
            recovered = await client.call_tool("get_flaky", {"key": "a", "fail": 2})
            exhausted = await client.call_tool("get_flaky", {"key": "b", "fail": 5})
            server_error = await client.call_tool("get_status", {"code": 500})
            post = await client.call_tool("post_flaky", {"key": "c", "fail": 1})
    assert recovered.is_error is False and recovered.structured_content == {"attempt": 3}
    assert _attempts(upstream, "a") == 3
    assert exhausted.is_error and "HTTP 503" in text(exhausted)
    assert _attempts(upstream, "b") == 3, "the first try and 2 retries"
    assert server_error.is_error and sum(1 for r in upstream.requests if r.path == "/status/500") == 1
    assert post.is_error and _attempts(upstream, "c") == 1, "POST is never retried unless configured"


@pytest.mark.slow
async def test_post_retries_only_when_configured(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    retries = {"attempts": 1, "backoff": "10ms", "methods": ["POST"]}
    with gateway(faults_config(upstream_url, retries=retries)) as url:
        async with mcp_client(url + "/mcp") as client:
            post = await client.call_tool("post_flaky", {"key": "p", "fail": 1})
            get = await client.call_tool("get_flaky", {"key": "g", "fail": 1})
    assert post.is_error is False and _attempts(upstream, "p") == 2
    assert get.is_error and _attempts(upstream, "g") == 1, "`methods` replaces the default list"


@pytest.mark.slow
async def test_retries_stay_within_the_total_timeout(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    retries = {"attempts": 5, "backoff": "2s"}
    with gateway(faults_config(upstream_url, timeout="500ms", retries=retries)) as url:
        async with mcp_client(url + "/mcp") as client:
            started = time.monotonic()
            result = await client.call_tool("get_flaky", {"key": "t", "fail": 10})
            elapsed = time.monotonic() - started
    assert result.is_error
    assert elapsed < 1.5, elapsed
    assert _attempts(upstream, "t") < 6


# --- circuit breaker ---------------------------------------------------------------------------------------


async def _readyz(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.get(url + "/readyz")


@pytest.mark.slow
async def test_circuit_opens_fails_fast_then_probes_and_closes(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    breaker = {"failures": 3, "reset_after": "1s"}
    with gateway(faults_config(upstream_url, circuit_breaker=breaker)) as url:
        async with mcp_client(url + "/mcp") as client:
            upstream.outage = 503
            for _ in range(3):
                failed = await client.call_tool("get_status", {"code": 200})
                assert failed.is_error and "HTTP 503" in text(failed)
            assert len(upstream.requests) == 3

            fast = await client.call_tool("get_status", {"code": 200})
            assert fast.is_error and len(upstream.requests) == 3, "an open circuit does not call the upstream"
            message = text(fast)
            assert "Upstream 'faults' is unavailable: its last 3 calls failed (last: HTTP 503)" in message, message
            assert "it will try again in 1s" in message

            ready = await _readyz(url)
            assert ready.status_code == 200, "an open circuit reports, it does not fail readiness"
            body = ready.json()
            assert body["status"] == "degraded" and body["circuit_open"] == ["faults"]
            assert body["upstreams"]["faults"]["circuit"] == "open"

            upstream.outage = None
            await asyncio.sleep(1.1)
            probe = await client.call_tool("get_status", {"code": 200})
            assert probe.is_error is False and len(upstream.requests) == 4
            assert (await _readyz(url)).json()["status"] == "ready"


@pytest.mark.slow
async def test_half_open_lets_one_probe_through(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    breaker = {"failures": 1, "reset_after": "300ms"}
    with gateway(faults_config(upstream_url, circuit_breaker=breaker)) as url:
        async with mcp_client(url + "/mcp") as client:
            upstream.outage = 502
            await client.call_tool("get_status", {"code": 200})
            upstream.outage = None
            await asyncio.sleep(0.4)
            probe, other = await asyncio.gather(
                client.call_tool("get_slow", {"seconds": 0.5}),
                _after(0.1, client.call_tool("get_status", {"code": 200})),
            )
            closed = await client.call_tool("get_status", {"code": 200})
    assert probe.is_error is False
    assert other.is_error and "a probe call is checking it now" in text(other), "only the probe goes through"
    assert closed.is_error is False


@pytest.mark.slow
async def test_client_errors_and_500s_do_not_open_the_circuit(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(faults_config(upstream_url, circuit_breaker={"failures": 2})) as url:
        async with mcp_client(url + "/mcp") as client:
            for code in (404, 500, 400, 500):
                result = await client.call_tool("get_status", {"code": code})
                assert result.is_error and f"HTTP {code}" in text(result)
            assert (await client.call_tool("get_status", {"code": 200})).is_error is False


async def _after(seconds: float, awaitable: Any) -> Any:
    await asyncio.sleep(seconds)
    return await awaitable


# --- specs served by URL -------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_unreachable_spec_url_loads_in_the_background(
    gateway: GatewayFactory, upstream_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "SPEC_RETRY_FIRST", 0.2)
    spec_host = RecordingUpstream(outage=503)
    spec_host_documents = {"/faults.yaml": (SPECS / "faults.yaml").read_bytes()}
    with ServerThread(spec_host) as spec_server:
        raw = {
            "groups": [
                {
                    "name": "local",
                    "endpoint": "/local/mcp",
                    "upstreams": ["echo"],
                    "inbound_auth": {"strategy": "none"},
                },
                {
                    "name": "mixed",
                    "endpoint": "/mixed/mcp",
                    "upstreams": ["echo", "remote"],
                    "inbound_auth": {"strategy": "none"},
                },
            ],
            "upstreams": [
                {"name": "echo", "base_url": upstream_url, "openapi": {"source": "echo.yaml"}},
                {
                    "name": "remote",
                    "base_url": upstream_url,
                    "openapi": {"source": spec_server.url + "/faults.yaml"},
                },
            ],
        }
        with gateway(raw) as url:
            ready = await _readyz(url)
            assert ready.status_code == 503
            assert ready.json()["loading"] == ["remote"] and ready.json()["status"] == "starting"
            assert spec_server.url not in ready.text, "no URLs on the unauthenticated readiness route"
            async with mcp_client(url + "/mixed/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "echo_get_item" in names and not any(n.startswith("remote_") for n in names)
                assert (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error is False

            async with _event_stream(url + "/mixed/mcp") as events:
                spec_host.documents.update(spec_host_documents)
                spec_host.outage = None
                for _ in range(100):
                    ready = await _readyz(url)
                    if ready.status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                assert ready.status_code == 200 and ready.json()["upstreams"]["remote"]["spec"] == "loaded"
                assert "notifications/tools/list_changed" in await asyncio.wait_for(anext(events), 5)
            async with mcp_client(url + "/mixed/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"echo_get_item", "remote_get_flaky"} <= names
                result = await client.call_tool("remote_get_status", {"code": 200})
                assert result.is_error is False
    assert len(spec_host.requests) >= 2, "fetched again after the first failure"


@asynccontextmanager
async def _event_stream(endpoint: str) -> AsyncIterator[AsyncIterator[str]]:
    """A handshake-era session's server-to-client event stream, as its `data:` lines."""
    async with httpx2.AsyncClient(timeout=10) as http:
        opened = await http.post(endpoint, json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"})
        headers = {"Accept": "text/event-stream", "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        async with http.stream("GET", endpoint, headers=headers) as stream:
            yield (line async for line in stream.aiter_lines() if line.startswith("data:"))


def test_unreachable_spec_url_fails_validate_and_missing_file_fails_serve(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    raw = {
        "groups": [{"name": "g", "upstreams": ["remote"], "inbound_auth": {"strategy": "none"}}],
        "upstreams": [{"name": "remote", "base_url": closed, "openapi": {"source": closed + "/spec.yaml"}}],
    }
    config = parse_config(raw, base_dir=tmp_path, env={})
    with pytest.raises(ConfigError, match=r"upstreams\[0\]\.openapi\.source: fetching .* failed"):
        build_gateway(config)  # validate / tools: every spec must load
    assert build_gateway(config, defer_unavailable_specs=True).pending.keys() == {"remote"}

    raw["upstreams"][0]["openapi"] = {"source": "missing.yaml"}
    config = parse_config(raw, base_dir=tmp_path, env={})
    with pytest.raises(ConfigError, match=r"file not found: missing.yaml"):
        build_gateway(config, defer_unavailable_specs=True)  # serve: a file that is not there is a config error
