"""/metrics kept from callers: a bearer token, or a listener of its own; a warning when it is neither."""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx2
import pytest

from mcp_anything.app import create_app
from mcp_anything.config import parse_config
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.mcp import mcp_client
from tests.support.metrics import Scrape
from tests.support.openapi import SPECS
from tests.support.servers import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOKEN = "metrics-token-5f1c"
BEARER = f"Bearer {TOKEN}"


def with_metrics(upstream_url: str, **metrics: Any) -> dict[str, Any]:
    return {**echo_config(upstream_url), "server": {"metrics": metrics}}


async def test_metrics_with_a_token_are_refused_without_it(gateway: GatewayFactory, upstream_url: str) -> None:
    raw = with_metrics(upstream_url, token="${METRICS_TOKEN}")
    with gateway(raw, env={"METRICS_TOKEN": TOKEN}) as url:
        async with mcp_client(url + "/mcp") as client:
            await client.call_tool("echo_get_item", {"itemId": "1"})
        async with httpx2.AsyncClient() as http:
            refused = [
                await http.get(url + "/metrics"),
                await http.get(url + "/metrics", headers={"Authorization": "Bearer wrong"}),
                await http.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}),
                await http.get(url + "/metrics", headers={"Authorization": TOKEN}),
                await http.get(
                    url + "/metrics", headers=[("Authorization", "Bearer x"), ("Authorization", f"Bearer {TOKEN}")]
                ),
            ]
            allowed = await http.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    for response in refused:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'
        assert "echo_get_item" not in response.text and TOKEN not in response.text
    assert allowed.status_code == 200
    assert Scrape(allowed.text).value("mcp_anything_tool_calls_total", tool="echo_get_item", outcome="ok") >= 1


async def test_metrics_on_their_own_port_start_and_stop_with_the_app(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    port = free_port()
    with gateway(with_metrics(upstream_url, port=port)) as url:
        async with mcp_client(url + "/mcp") as client:
            await client.call_tool("echo_get_item", {"itemId": "1"})
        async with httpx2.AsyncClient() as http:
            public = await http.get(url + "/metrics")
            private = await http.get(f"http://127.0.0.1:{port}/metrics")
            elsewhere = await http.get(f"http://127.0.0.1:{port}/mcp")
    assert public.status_code == 404
    assert private.status_code == 200 and private.headers["content-type"].startswith("text/plain; version=")
    assert Scrape(private.text).value("mcp_anything_tool_calls_total", tool="echo_get_item", outcome="ok") >= 1
    assert elsewhere.status_code == 404, "the metrics port serves /metrics only"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the listener stopped with the app"


async def test_both_a_port_and_a_token(gateway: GatewayFactory, upstream_url: str) -> None:
    port = free_port()
    with gateway(with_metrics(upstream_url, port=port, token=TOKEN)):
        async with httpx2.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 401
            authorized = {"Authorization": f"Bearer {TOKEN}"}
            assert (await http.get(f"http://127.0.0.1:{port}/metrics", headers=authorized)).status_code == 200


async def test_a_metrics_port_in_use_fails_startup_naming_the_key(upstream_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(parse_config(with_metrics(upstream_url, port=port), base_dir=SPECS, env={}))
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "lifespan.startup"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert sent[0]["message"].startswith(f"server.metrics.port: cannot listen on 127.0.0.1:{port}: ")
    await app.gateway.aclose()


@pytest.mark.parametrize(
    ("server", "warned"),
    [
        ({"host": "0.0.0.0"}, True),
        ({"host": "0.0.0.0", "metrics": {"token": TOKEN}}, False),
        ({"host": "0.0.0.0", "metrics": {"port": 9464}}, False),
        ({"host": "0.0.0.0", "metrics": False}, False),
        ({"host": "127.0.0.1"}, False),
    ],
)
async def test_startup_warns_when_metrics_are_open_on_a_public_address(
    server: dict[str, Any], warned: bool, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mcp_anything")
    app = create_app(parse_config({**echo_config(upstream_url), "server": server}, base_dir=SPECS, env={}))
    await app.gateway.aclose()
    warnings = [r.getMessage() for r in caplog.records if "/metrics is served without a token" in r.getMessage()]
    expected = (
        "config: server.metrics: /metrics is served without a token on 0.0.0.0:8080, next to the MCP endpoints: "
        "anyone who can reach them can read every tool name, upstream and outcome count; set server.metrics.port "
        "or server.metrics.token"
    )
    assert warnings == ([expected] if warned else [])


def test_metrics_config_problems_name_the_key() -> None:
    from mcp_anything.config import ConfigError

    for metrics, problem in [
        ({"port": 8080}, "server: metrics.port: the MCP port"),
        ({"token": " spaced "}, "server.metrics.token: must be printable ASCII"),
        ({"prot": 9100}, "server.metrics.prot: unknown key"),
    ]:
        with pytest.raises(ConfigError, match=problem):
            parse_config({**echo_config("http://127.0.0.1:9"), "server": {"metrics": metrics}}, env={})
