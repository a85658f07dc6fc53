"""CEL rules end to end: callers identified by API key, a real gateway, the recording upstream and
the official MCP client."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from tests.support.gateway import GatewayFactory, echo_config
from tests.support.mcp import INITIALIZE, mcp_client
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KEYS = {"ALICE_KEY": "alice-key-0123456789", "BOT_KEY": "bot-key-0123456789", "EVE_KEY": "eve-key-0123456789"}


def rules_config(upstream_url: str) -> dict[str, Any]:
    config = echo_config(upstream_url)
    config["groups"][0]["inbound_auth"] = {
        "strategy": "apikey",
        "apikey": {"values": {"alice": "${ALICE_KEY}", "svc-bot": "${BOT_KEY}", "eve": "${EVE_KEY}"}},
    }
    config["groups"][0]["authorization"] = {
        "default": "deny",
        "rules": [
            {"effect": "deny", "when": 'jwt.sub == "eve"'},  # no `tools`: eve may not connect at all
            {"effect": "deny", "when": 'jwt.sub.startsWith("svc-")', "tools": ["echo_delete_*"]},
            {"effect": "allow", "when": 'jwt.sub == "alice" || jwt.sub.startsWith("svc-")', "tools": ["echo_*"]},
            {"effect": "deny", "when": 'mcp.tool.arguments.itemId == "locked"', "tools": ["echo_delete_item"]},
        ],
    }
    return config


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_rules_decide_per_user_and_refused_calls_never_reach_the_upstream(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, mode: str
) -> None:
    with gateway(rules_config(upstream_url), env=KEYS) as url:
        async with mcp_client(url + "/mcp", mode=mode, headers={"X-API-Key": KEYS["ALICE_KEY"]}) as alice:
            alice_tools = {t.name for t in (await alice.list_tools()).tools}
            assert (await alice.call_tool("echo_delete_item", {"itemId": "3"})).is_error is False
            with pytest.raises(MCPError, match="Unknown tool: echo_delete_item"):
                await alice.call_tool("echo_delete_item", {"itemId": "locked"})  # refused by its arguments
        async with mcp_client(url + "/mcp", mode=mode, headers={"X-API-Key": KEYS["BOT_KEY"]}) as bot:
            bot_tools = {t.name for t in (await bot.list_tools()).tools}
            assert (await bot.call_tool("echo_get_item", {"itemId": "3"})).is_error is False
            with pytest.raises(MCPError, match="Unknown tool: echo_delete_item"):
                await bot.call_tool("echo_delete_item", {"itemId": "3"})
    assert "echo_delete_item" in alice_tools and "echo_delete_item" not in bot_tools
    assert alice_tools - bot_tools == {"echo_delete_item"}
    assert [(r.method, r.path) for r in upstream.requests] == [("DELETE", "/items/3"), ("GET", "/items/3")]


async def test_an_endpoint_deny_rule_answers_403(gateway: GatewayFactory, upstream_url: str) -> None:
    accept = {"Accept": "application/json, text/event-stream"}
    with gateway(rules_config(upstream_url), env=KEYS) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            eve = await http.post("/mcp", json=INITIALIZE, headers={**accept, "X-API-Key": KEYS["EVE_KEY"]})
            alice = await http.post("/mcp", json=INITIALIZE, headers={**accept, "X-API-Key": KEYS["ALICE_KEY"]})
    assert eve.status_code == 403 and eve.json()["error"] == "forbidden"
    assert alice.status_code == 200
