"""Prometheus /metrics end to end: a real gateway, a real upstream, the official MCP client, a real scrape.

Metrics are process-wide, so every assertion compares a scrape before and after.
"""

from __future__ import annotations

import httpx2
import pytest

from mcp_anything import metrics
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.mcp import mcp_client
from tests.support.metrics import scrape
from tests.support.servers import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CALLS = "mcp_anything_tool_calls_total"
LATENCY = "mcp_anything_tool_call_duration_seconds_count"
UPSTREAM_ERRORS = "mcp_anything_upstream_errors_total"


async def test_tool_calls_latency_and_upstream_errors(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(echo_config(upstream_url)) as url:
        before = await scrape(url)
        async with mcp_client(url + "/mcp") as client:
            await client.call_tool("echo_get_item", {"itemId": "1"})
            await client.call_tool("echo_get_item", {"itemId": "2"})
            await client.call_tool("echo_get_status", {"code": 503})
            await client.call_tool("echo_get_item", {})  # missing itemId
        after = await scrape(url)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta(CALLS, group="default", tool="echo_get_item", outcome="ok") == 2
    assert delta(CALLS, group="default", tool="echo_get_item", outcome="invalid_arguments") == 1
    assert delta(CALLS, group="default", tool="echo_get_status", outcome="error") == 1
    assert delta(LATENCY, group="default", tool="echo_get_item") == 3
    assert delta(UPSTREAM_ERRORS, upstream="echo", status="503") == 1
    assert delta("mcp_anything_tool_call_duration_seconds_bucket", group="default", tool="echo_get_status", le="30.0")
    # The process collector comes with the default registry: what load tests and dashboards watch.
    assert after.value("process_open_fds") > 0 and after.value("process_resident_memory_bytes") > 0
    assert after.value("mcp_anything_event_loop_tasks") >= 1


async def test_connection_failures_are_counted_by_kind(gateway: GatewayFactory) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with gateway(echo_config(closed)) as url:
        before = await scrape(url)
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("echo_get_item", {"itemId": "1"})
        after = await scrape(url)
    assert result.is_error
    assert after.value(UPSTREAM_ERRORS, upstream="echo", status="connect") == (
        before.value(UPSTREAM_ERRORS, upstream="echo", status="connect") + 1
    )


async def test_sessions_gauge_counts_open_sessions(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp", mode="legacy"):
            assert (await scrape(url)).value("mcp_anything_sessions") == 1
        # The client ends its session with DELETE when it closes.
        assert (await scrape(url)).value("mcp_anything_sessions") == 0


async def test_metrics_can_be_switched_off(gateway: GatewayFactory, upstream_url: str) -> None:
    raw = {**echo_config(upstream_url), "server": {"metrics": False}}
    with gateway(raw) as url:
        async with mcp_client(url + "/mcp") as client:
            await client.call_tool("echo_get_item", {"itemId": "1"})
        async with httpx2.AsyncClient() as http:
            assert (await http.get(url + "/metrics")).status_code == 404


async def test_circuit_state_and_fail_fast_calls(gateway: GatewayFactory) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    raw = echo_config(closed, circuit_breaker={"failures": 2, "reset_after": "60s"})
    with gateway(raw) as url:
        circuit = "mcp_anything_upstream_circuit"
        assert (await scrape(url)).value(circuit, upstream="echo", state="closed") == 1
        before = await scrape(url)
        async with mcp_client(url + "/mcp") as client:
            for _ in range(3):
                assert (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error
        after = await scrape(url)
    assert after.value(circuit, upstream="echo", state="open") == 1
    assert after.value(circuit, upstream="echo", state="closed") == 0
    assert after.value(circuit, upstream="echo", state="half_open") == 0
    failed = {
        s: after.value(UPSTREAM_ERRORS, upstream="echo", status=s)
        - before.value(UPSTREAM_ERRORS, upstream="echo", status=s)
        for s in ("connect", "circuit_open")
    }
    assert failed == {"connect": 2, "circuit_open": 1}


async def test_token_metrics_api(gateway: GatewayFactory, upstream_url: str) -> None:
    """The API token-caching strategies call, as a scrape shows it (end to end in test_metrics_auth.py)."""
    endpoint = "https://idp.example/oauth/token"
    tokens = metrics.token_metrics("client_credentials", "https://user:pw@idp.example/oauth/token?x=1")
    with gateway(echo_config(upstream_url)) as url:
        before = await scrape(url)
        tokens.fetched(ok=True)
        tokens.fetched(ok=False)
        tokens.cache_hit()
        tokens.cache_hit()
        after = await scrape(url)
    fetches = "mcp_anything_token_fetches_total"
    labels = {"kind": "client_credentials", "endpoint": endpoint}
    assert after.value(fetches, **labels, outcome="ok") - before.value(fetches, **labels, outcome="ok") == 1
    assert after.value(fetches, **labels, outcome="error") - before.value(fetches, **labels, outcome="error") == 1
    hits = "mcp_anything_token_cache_hits_total"
    assert after.value(hits, **labels) - before.value(hits, **labels) == 2
    assert "pw@" not in after.text, "endpoints are labelled without userinfo"


def test_metrics_path_cannot_be_a_group_endpoint(upstream_url: str) -> None:
    from mcp_anything.config import ConfigError, parse_config

    raw = echo_config(upstream_url)
    raw["groups"][0]["endpoint"] = "/metrics"
    with pytest.raises(ConfigError, match=r"groups\[0\]\.endpoint: /metrics is served by the gateway itself"):
        parse_config(raw)
    parse_config({**raw, "server": {"metrics": False}})
