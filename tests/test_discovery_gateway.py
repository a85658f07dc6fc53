"""Discovery modes end to end: a real gateway, the recording upstream, the official MCP client on both
protocol generations, capability wristbands and CEL rules, MCP Inspector's CLI, and a reload."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_anything.app import build_gateway
from mcp_anything.config import ConfigError, parse_config
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.mcp import mcp_client
from tests.support.metrics import scrape
from tests.support.openapi import SHARED_SPECS, SPECS, minimal_spec
from tests.support.upstream import RecordingUpstream
from tests.support.wristband import PUBLIC_PEM, mint
from tests.test_inspector import inspector
from tests.test_reload import ConfigFile, reloading, serving

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

GATEWAY_TOOLS = {"search_tools", "call_tool"}
KEY_ENV = {"WRISTBAND_KEY": PUBLIC_PEM}
READER = {"tools": {"echo": ["get_item", "search_items"]}}
KEEPER = {"tools": {"echo": ["get_item", "search_items", "create_item", "replace_tags"]}}
ASANA = SHARED_SPECS / "asana" / "asana_oas.yaml"


def discovering(upstream_url: str, **discovery: Any) -> dict[str, Any]:
    config = echo_config(upstream_url)
    config["groups"][0]["discovery"] = discovery
    return config


def with_wristbands(config: dict[str, Any]) -> dict[str, Any]:
    config["groups"][0]["authorization"] = {"capabilities": {"public_key": "${WRISTBAND_KEY}"}}
    return config


def as_user(capabilities: dict[str, Any]) -> dict[str, str]:
    return {"x-mcp-authorized": mint(capabilities)}


async def listed(client: Any) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def search(client: Any, query: str, **more: Any) -> list[dict[str, Any]]:
    result = await client.call_tool("search_tools", {"query": query, **more})
    assert result.is_error is False, result.content
    assert result.structured_content["query"] == query
    return result.structured_content["tools"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_search_mode_lists_pinned_and_gateway_tools_then_searches_and_calls(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, mode: str
) -> None:
    with gateway(discovering(upstream_url, mode="search", pinned=["echo_get_i*"])) as url:
        async with mcp_client(url + "/mcp", mode=mode) as client:
            assert await listed(client) == {"echo_get_item"} | GATEWAY_TOOLS
            found = await search(client, "remove an item", limit=3)
            assert found[0]["name"] == "echo_delete_item" and len(found) <= 3
            assert all(set(entry) == {"name", "description", "inputSchema", "annotations"} for entry in found)
            called = await client.call_tool("call_tool", {"name": "echo_delete_item", "arguments": {"itemId": "7"}})
            direct = await client.call_tool("echo_get_item", {"itemId": "8"})  # a plain call by name works too
            invalid = await client.call_tool("call_tool", {"name": "echo_get_item", "arguments": {"itemId": 5}})
            text = (await client.call_tool("search_tools", {"query": "remove an item"})).content[0]
    assert called.is_error is False and direct.is_error is False
    assert invalid.is_error is True and "Invalid arguments for tool 'echo_get_item'" in invalid.content[0].text
    assert isinstance(text, types.TextContent) and "- echo_delete_item(itemId*)" in text.text
    assert [(r.method, r.path) for r in upstream.requests] == [("DELETE", "/items/7"), ("GET", "/items/8")]


async def test_both_protocol_generations_get_the_same_results(gateway: GatewayFactory, upstream_url: str) -> None:
    results = []
    with gateway(discovering(upstream_url, mode="search")) as url:
        for mode in ("legacy", "auto"):
            async with mcp_client(url + "/mcp", mode=mode) as client:
                listing = await client.list_tools()
                results.append(([t.name for t in listing.tools], await search(client, "tags of an item")))
    assert results[0] == results[1]
    assert results[0][1][0]["name"] == "echo_replace_tags"


@pytest.mark.parametrize("discovery", [{"mode": "all"}, {"mode": "auto"}])  # auto: 15 tools, threshold 50
async def test_all_mode_lists_every_tool_and_has_no_gateway_tools(
    gateway: GatewayFactory, upstream_url: str, discovery: dict[str, str]
) -> None:
    with gateway(discovering(upstream_url, **discovery)) as url:
        async with mcp_client(url + "/mcp") as client:
            names = await listed(client)
            with pytest.raises(MCPError, match="Unknown tool: search_tools"):
                await client.call_tool("search_tools", {"query": "item"})
    assert "echo_get_item" in names and not names & GATEWAY_TOOLS


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_auto_mode_decides_per_caller(gateway: GatewayFactory, upstream_url: str, mode: str) -> None:
    config = with_wristbands(discovering(upstream_url, mode="auto", auto_threshold=3))
    with gateway(config, env=KEY_ENV) as url:
        async with mcp_client(url + "/mcp", mode=mode, headers=as_user(READER)) as reader:
            assert await listed(reader) == {"echo_get_item", "echo_search_items"}  # 2 tools: all of them
            reading = await reader.list_tools()
        async with mcp_client(url + "/mcp", mode=mode, headers=as_user(KEEPER)) as keeper:
            assert await listed(keeper) == GATEWAY_TOOLS  # 4 tools: search
            assert {e["name"] for e in await search(keeper, "item", limit=50)} == {
                "echo_get_item",
                "echo_search_items",
                "echo_create_item",
                "echo_replace_tags",
            }
    if mode == "auto":  # the 2026-07-28 listing says it depends on the caller
        assert reading.cache_scope == "private"


async def test_search_results_follow_the_wristband_and_hidden_tools_are_refused_through_call_tool(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_anything")
    config = with_wristbands(discovering(upstream_url, mode="search"))
    with gateway(config, env=KEY_ENV) as url:
        async with mcp_client(url + "/mcp", headers=as_user(READER)) as reader:
            found = {entry["name"] for entry in await search(reader, "delete remove item", limit=50)}
            with pytest.raises(MCPError, match="Unknown tool: echo_delete_item") as hidden:
                await reader.call_tool("call_tool", {"name": "echo_delete_item", "arguments": {"itemId": "1"}})
            with pytest.raises(MCPError, match="Unknown tool: echo_nope") as unknown:
                await reader.call_tool("call_tool", {"name": "echo_nope", "arguments": {}})
            called = await reader.call_tool("call_tool", {"name": "echo_get_item", "arguments": {"itemId": "2"}})
    assert found <= {"echo_get_item", "echo_search_items"} and "echo_get_item" in found
    assert hidden.value.error.code == unknown.value.error.code
    assert called.is_error is False
    assert [(r.method, r.path) for r in upstream.requests] == [("GET", "/items/2")]
    audit = [(r.fields["tool"], r.fields["decision"]) for r in caplog.records if r.name == "mcp_anything.audit"
             and r.fields["action"] == "call"]  # fmt: skip
    assert audit == [("echo_delete_item", "deny"), ("echo_get_item", "allow")]
    calls = [r.fields for r in caplog.records if r.name == "mcp_anything.calls"]
    assert [(c["tool"], c["upstream"], c["outcome"]) for c in calls] == [("echo_get_item", "echo", "ok")]


async def test_search_results_follow_cel_rules(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    keys = {"ALICE_KEY": "alice-key-0123456789", "BOT_KEY": "bot-key-0123456789"}
    config = discovering(upstream_url, mode="search")
    config["groups"][0]["inbound_auth"] = {
        "strategy": "apikey",
        "apikey": {"values": {"alice": "${ALICE_KEY}", "svc-bot": "${BOT_KEY}"}},
    }
    config["groups"][0]["authorization"] = {
        "default": "allow",
        "rules": [{"effect": "deny", "when": 'jwt.sub.startsWith("svc-")', "tools": ["echo_delete_*"]}],
    }
    with gateway(config, env=keys) as url:
        async with mcp_client(url + "/mcp", headers={"X-API-Key": keys["ALICE_KEY"]}) as alice:
            alice_found = [e["name"] for e in await search(alice, "delete an item")]
        async with mcp_client(url + "/mcp", headers={"X-API-Key": keys["BOT_KEY"]}) as bot:
            bot_found = [e["name"] for e in await search(bot, "delete an item")]
            with pytest.raises(MCPError, match="Unknown tool: echo_delete_item"):
                await bot.call_tool("call_tool", {"name": "echo_delete_item", "arguments": {"itemId": "1"}})
    assert alice_found[0] == "echo_delete_item"
    assert "echo_delete_item" not in bot_found and bot_found
    assert upstream.requests == []


async def test_a_reload_rebuilds_the_index_and_sends_list_changed(tmp_path: Path, upstream_url: str) -> None:
    raw = reloading(upstream_url)
    raw["groups"][0]["discovery"] = {"mode": "search"}
    config = ConfigFile(tmp_path, raw)
    notified = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            notified.set()

    with serving(config) as (url, _app):
        async with mcp_client(url + "/mcp", mode="legacy", message_handler=on_message) as client:
            assert (await search(client, "remove an item"))[0]["name"] == "echo_delete_item"
            changed = reloading(upstream_url, exclude=["deleteItem"])
            changed["groups"][0]["discovery"] = {"mode": "search"}
            config.write(changed)
            with anyio.fail_after(10):
                await notified.wait()
            after = [entry["name"] for entry in await search(client, "remove an item", limit=50)]
    assert "echo_delete_item" not in after


@pytest.mark.parametrize("mode", ["search", "auto"])
def test_an_upstream_tool_named_like_a_gateway_tool_is_a_config_error(tmp_path: Path, mode: str) -> None:
    operation = {"operationId": "search_tools", "responses": {"200": {"description": "ok"}}}
    (tmp_path / "spec.yaml").write_text(orjson.dumps(minimal_spec({"/find": {"get": operation}})).decode())
    upstream = {"name": "api", "tool_prefix": "", "base_url": "http://127.0.0.1:9", "openapi": {"source": "spec.yaml"}}
    raw = {
        "groups": [
            {"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}, "discovery": {"mode": mode}}
        ],
        "upstreams": [upstream],
    }
    with pytest.raises(ConfigError) as error:
        build_gateway(parse_config(raw, base_dir=tmp_path))
    (problem,) = error.value.problems
    assert "'search_tools' of upstream 'api'" in problem and "gateway's own 'search_tools'" in problem
    raw["groups"][0]["discovery"] = {"mode": "all"}
    assert build_gateway(parse_config(raw, base_dir=tmp_path)).groups[0].tools.keys() == {"search_tools"}


def test_inspector_searches_then_calls_through_call_tool(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    with gateway(discovering(upstream_url, mode="search")) as url:
        listing = inspector(url + "/mcp", "--method", "tools/list")
        found = inspector(
            url + "/mcp", "--method", "tools/call", "--tool-name", "search_tools", "--tool-arg", "query=get an item",
        )  # fmt: skip
        name = found["structuredContent"]["tools"][0]["name"]
        called = inspector(
            url + "/mcp", "--method", "tools/call", "--tool-name", "call_tool", "--tool-arg", f"name={name}",
            "--tool-arg", 'arguments={"itemId": "b9"}',
        )  # fmt: skip
    assert {tool["name"] for tool in listing["tools"]} == GATEWAY_TOOLS
    assert name == "echo_get_item"
    assert called.get("isError") is False, json.dumps(called)
    assert upstream.last.path == "/items/b9"


@pytest.mark.corpus
@pytest.mark.skipif(not ASANA.is_file(), reason="../shared/specs is absent")
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_search_mode_listing_of_a_real_api_fits_in_4_kib(gateway: GatewayFactory, mode: str) -> None:
    raw = {
        "groups": [
            {
                "name": "asana",
                "upstreams": ["asana"],
                "inbound_auth": {"strategy": "none"},
                "discovery": {"mode": "auto"},
            }
        ],
        "upstreams": [{"name": "asana", "base_url": "http://127.0.0.1:9", "openapi": {"source": str(ASANA)}}],
    }
    with gateway(raw) as url:
        async with mcp_client(url + "/mcp", mode=mode) as client:
            listing = await client.list_tools()
            found = await search(client, "add a comment to a task")
    wire = orjson.dumps([tool.model_dump(by_alias=True, exclude_none=True) for tool in listing.tools])
    assert {tool.name for tool in listing.tools} == GATEWAY_TOOLS and len(wire) <= 4096
    assert found[0]["name"] == "asana_create_story_for_task"
    assert all(len(orjson.dumps(entry)) <= 8192 for entry in found)


def test_a_pinned_glob_matching_no_tool_is_a_config_error(upstream_url: str) -> None:
    raw = discovering(upstream_url, mode="search", pinned=["echo_get_item", "echo_gte_*"])
    with pytest.raises(ConfigError) as error:
        build_gateway(parse_config(raw, base_dir=SPECS))
    assert error.value.problems == ["groups[0].discovery.pinned[1]: 'echo_gte_*' matches no tool of group 'default'"]


async def test_call_tool_counts_and_limits_the_real_tool(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    config = discovering(upstream_url, mode="search")
    config["groups"][0]["name"] = "limited"
    config["groups"][0]["rate_limits"] = [{"per": "tool", "limit": "1/minute", "tools": ["echo_get_item"]}]
    with gateway(config) as url:
        async with mcp_client(url + "/mcp") as client:
            first = await client.call_tool("call_tool", {"name": "echo_get_item", "arguments": {"itemId": "1"}})
            second = await client.call_tool("echo_get_item", {"itemId": "2"})  # the same tool, called by name
        scraped = await scrape(url)
    assert first.is_error is False
    assert second.is_error is True and "Rate limit exceeded for tool 'echo_get_item'" in second.content[0].text
    counted = {outcome: scraped.value("mcp_anything_tool_calls_total", group="limited", tool="echo_get_item",
                                      outcome=outcome) for outcome in ("ok", "rate_limited")}  # fmt: skip
    assert counted == {"ok": 1.0, "rate_limited": 1.0}
    assert scraped.value("mcp_anything_tool_calls_total", group="limited", tool="call_tool", outcome="ok") == 0.0
    assert len(upstream.requests) == 1
