"""Protocol, routing, OpenAPI tools and authorization of a gateway driven in-process (tests/support/asgi.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.asgi import NO_UPSTREAM, asgi_gateway
from tests.support.gateway import echo_config
from tests.support.mcp import ACCEPT, INITIALIZE

pytestmark = pytest.mark.anyio

PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
LIST = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
MODERN = "2026-07-28"


def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def modern(message: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """`message` in the stateless protocol: its version and capabilities in `_meta`, its method in a header."""
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    params = {**message.get("params", {}), "_meta": meta}
    headers = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": message["method"]}
    if message["method"] == "tools/call":
        headers["Mcp-Name"] = params["name"]
    return {**message, "params": params}, headers


async def test_a_session_opens_answers_and_closes() -> None:
    async with asgi_gateway(echo_config(NO_UPSTREAM)) as http:
        assert (await http.post("/mcp", json=PING, headers=ACCEPT)).status_code == 400  # no session
        assert (await http.post("/mcp", json=PING, headers={**ACCEPT, "Mcp-Session-Id": "nope"})).status_code == 404
        opened = await http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
        assert opened.status_code == 200
        assert opened.json()["result"]["protocolVersion"] == INITIALIZE["params"]["protocolVersion"]
        session = {**ACCEPT, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        assert (await http.post("/mcp", json=PING, headers=session)).json()["result"] == {}
        assert (await http.delete("/mcp", headers=session)).status_code == 200
        assert (await http.post("/mcp", json=PING, headers=session)).status_code == 404


async def test_malformed_requests_get_protocol_errors() -> None:
    async with asgi_gateway(echo_config(NO_UPSTREAM)) as http:
        assert (await http.post("/mcp", content=b"{not json", headers=ACCEPT)).json()["error"]["code"] == -32700
        assert (await http.post("/mcp", json=[PING], headers=ACCEPT)).status_code == 400
        assert (await http.put("/mcp", json=PING)).status_code == 405


async def test_both_protocols_list_the_specs_tools_with_their_schemas() -> None:
    async with asgi_gateway(echo_config(NO_UPSTREAM)) as http:
        opened = await http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
        session = {**ACCEPT, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        listed = (await http.post("/mcp", json=LIST, headers=session)).json()["result"]["tools"]
        body, headers = modern(LIST)
        stateless = (await http.post("/mcp", json=body, headers=headers)).json()["result"]["tools"]
    assert [t["name"] for t in listed] == [t["name"] for t in stateless]
    search = next(t for t in listed if t["name"] == "echo_search_items")
    assert search["inputSchema"]["required"] == ["q"]
    assert search["inputSchema"]["properties"]["limit"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 50,
        "default": 10,
    }


async def test_calls_are_validated_and_an_unreachable_upstream_is_an_error_result() -> None:
    async with asgi_gateway(echo_config(NO_UPSTREAM)) as http:
        body, headers = modern(call("echo_search_items", {"q": ""}))  # minLength 1
        invalid = (await http.post("/mcp", json=body, headers=headers)).json()["result"]
        body, headers = modern(call("echo_search_items", {"q": "x"}))
        unreachable = (await http.post("/mcp", json=body, headers=headers)).json()["result"]
        body, headers = modern(call("echo_nope", {}))
        unknown = (await http.post("/mcp", json=body, headers=headers)).json()
    assert invalid["isError"] is True and "argument 'q'" in invalid["content"][0]["text"]
    assert unreachable["isError"] is True and "echo" in unreachable["content"][0]["text"]
    assert "Unknown tool: echo_nope" in unknown["error"]["message"]


async def test_routing_health_readiness_and_metrics() -> None:
    raw = echo_config(NO_UPSTREAM)
    raw["groups"].append(
        {"name": "other", "endpoint": "/other/mcp", "upstreams": ["echo"], "inbound_auth": {"strategy": "none"}}
    )
    async with asgi_gateway(raw) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["upstreams"]["echo"]["tools"] >= 10
        assert (await http.post("/other/mcp", json=INITIALIZE, headers=ACCEPT)).status_code == 200
        assert (await http.post("/nowhere", json=INITIALIZE, headers=ACCEPT)).status_code == 404
        metrics = await http.get("/metrics")
        assert metrics.status_code == 200 and "mcp_anything" in metrics.text


async def test_an_api_key_group_refuses_callers_without_the_key_and_filters_tools_by_rule() -> None:
    raw = echo_config(NO_UPSTREAM)
    raw["groups"][0]["inbound_auth"] = {
        "strategy": "apikey",
        "apikey": {"values": {"alice": "${ALICE_KEY}", "eve": "${EVE_KEY}"}},
    }
    raw["groups"][0]["authorization"] = {
        "default": "deny",
        "rules": [
            {"effect": "deny", "when": 'jwt.sub == "eve"'},
            {"effect": "allow", "tools": ["echo_get_item"], "when": 'jwt.sub == "alice"'},
        ],
    }
    keys = {"ALICE_KEY": "alice-key-0123456789", "EVE_KEY": "eve-key-0123456789"}
    async with asgi_gateway(raw, env=keys) as http:
        missing = await http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
        wrong = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, "X-API-Key": "guess"})
        eve = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, "X-API-Key": keys["EVE_KEY"]})
        body, headers = modern(LIST)
        alice = await http.post("/mcp", json=body, headers={**headers, "X-API-Key": keys["ALICE_KEY"]})
    assert missing.status_code == 401 and wrong.status_code == 401
    assert eve.status_code == 403
    assert [t["name"] for t in alice.json()["result"]["tools"]] == ["echo_get_item"]
