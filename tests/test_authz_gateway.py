"""Per-user tools end to end: a real gateway, the recording upstream, the official MCP client and
MCP Inspector's CLI, with capability wristbands minted the way Authorino does."""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from tests.support import node
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.mcp import INITIALIZE, mcp_client
from tests.support.upstream import RecordingUpstream
from tests.support.wristband import PUBLIC_PEM, mint

pytestmark = pytest.mark.slow

READER = {"tools": {"echo": ["get_item", "search_items"]}}
JANITOR = {"tools": {"echo": ["delete_item"]}}
KEY_ENV = {"WRISTBAND_KEY": PUBLIC_PEM}


def wristband_config(upstream_url: str, **authorization: Any) -> dict[str, Any]:
    config = echo_config(upstream_url)
    config["groups"][0]["authorization"] = {"capabilities": {"public_key": "${WRISTBAND_KEY}"}, **authorization}
    return config


def as_user(capabilities: dict[str, Any]) -> dict[str, str]:
    return {"x-mcp-authorized": mint(capabilities)}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_two_users_each_list_and_call_only_their_tools(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_anything.audit")
    with gateway(wristband_config(upstream_url), env=KEY_ENV) as url:
        async with mcp_client(url + "/mcp", mode=mode, headers=as_user(READER)) as reader:
            listed = {t.name for t in (await reader.list_tools()).tools}
            result = await reader.call_tool("echo_get_item", {"itemId": "7"})
            with pytest.raises(MCPError, match="Unknown tool: echo_delete_item") as refused:
                await reader.call_tool("echo_delete_item", {"itemId": "7"})
            with pytest.raises(MCPError) as unknown:
                await reader.call_tool("echo_nope", {})
        assert listed == {"echo_get_item", "echo_search_items"}
        assert result.is_error is False
        assert upstream.last.path == "/items/7" and upstream.last.header("x-mcp-authorized") is None
        assert len(upstream.requests) == 1, "the refused call never reached the upstream"
        assert refused.value.error.code == unknown.value.error.code  # refused looks exactly like unknown

        async with mcp_client(url + "/mcp", mode=mode, headers=as_user(JANITOR)) as janitor:
            listed = {t.name for t in (await janitor.list_tools()).tools}
            deleted = await janitor.call_tool("echo_delete_item", {"itemId": "7"})
            with pytest.raises(MCPError, match="Unknown tool: echo_get_item"):
                await janitor.call_tool("echo_get_item", {"itemId": "7"})
        assert listed == {"echo_delete_item"}
        assert deleted.is_error is False
        assert [r.method for r in upstream.requests] == ["GET", "DELETE"]

    calls = [
        (r.fields["tool"], r.fields["decision"], r.fields["reason"])
        for r in caplog.records
        if r.name == "mcp_anything.audit" and r.fields["action"] == "call"
    ]
    assert calls == [
        ("echo_get_item", "allow", "capabilities: tool granted"),
        ("echo_delete_item", "deny", "capabilities: tool not granted"),
        ("echo_delete_item", "allow", "capabilities: tool granted"),
        ("echo_get_item", "deny", "capabilities: tool not granted"),
    ]


@pytest.mark.anyio
async def test_without_a_valid_wristband_a_caller_gets_no_tools(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    with gateway(wristband_config(upstream_url), env=KEY_ENV) as url:
        async with mcp_client(url + "/mcp") as anonymous:
            assert (await anonymous.list_tools()).tools == []
            with pytest.raises(MCPError, match="Unknown tool: echo_get_item"):
                await anonymous.call_tool("echo_get_item", {"itemId": "7"})
        expired = {"x-mcp-authorized": mint(READER, lifetime=-300)}
        async with mcp_client(url + "/mcp", headers=expired) as late:
            assert (await late.list_tools()).tools == []
    assert upstream.requests == []


def bound_groups_config(upstream_url: str) -> dict[str, Any]:
    """Two groups trusting one wristband key, each bound to its own audience and to the caller's API key name."""
    config = echo_config(upstream_url)
    keys = {"strategy": "api_key", "api_key": {"values": {"alice": "alice-key-1", "bob": "bob-key-2"}}}
    config["groups"] = [
        {
            "name": name,
            "endpoint": f"/{name}/mcp",
            "upstreams": ["echo"],
            "inbound_auth": keys,
            "authorization": {
                "capabilities": {"public_key": "${WRISTBAND_KEY}", "audience": f"gw-{name}", "bind_subject": True}
            },
        }
        for name in ("public", "admin")
    ]
    return config


@pytest.mark.anyio
async def test_a_bound_wristband_cannot_be_replayed_at_another_group_or_by_another_caller(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_anything.audit")
    alices = mint(JANITOR, sub="alice", aud="gw-public")

    async def deleted(endpoint: str, api_key: str) -> bool:
        headers = {"X-API-Key": api_key, "x-mcp-authorized": alices}
        async with mcp_client(url + endpoint, headers=headers) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            try:
                await client.call_tool("echo_delete_item", {"itemId": "9"})
            except MCPError:
                assert listed == set()
                return False
            assert listed == {"echo_delete_item"}
            return True

    with gateway(bound_groups_config(upstream_url), env=KEY_ENV) as url:
        assert await deleted("/public/mcp", "alice-key-1")
        assert not await deleted("/admin/mcp", "alice-key-1"), "replayed at another group"
        assert not await deleted("/public/mcp", "bob-key-2"), "replayed by another caller"
    assert len(upstream.requests) == 1
    refusals = {
        (r.fields["group"], r.fields["subject"], r.fields["reason"])
        for r in caplog.records
        if r.name == "mcp_anything.audit" and r.fields["decision"] == "deny"
    }
    assert refusals == {
        ("admin", "alice", "capabilities: x-mcp-authorized was issued for another audience"),
        ("public", "bob", "capabilities: x-mcp-authorized was issued to another subject than the caller's"),
    }


@pytest.mark.anyio
async def test_an_endpoint_rule_answers_403_before_any_session(gateway: GatewayFactory, upstream_url: str) -> None:
    config = echo_config(upstream_url)
    config["groups"][0]["authorization"] = {"rules": [{"effect": "allow", "when": 'jwt.sub == "alice"'}]}
    with gateway(config) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            response = await http.post(
                "/mcp", json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"}
            )
    assert response.status_code == 403  # the anonymous caller has no `sub`: the allow rule cannot match
    assert "mcp-session-id" not in response.headers


def inspector(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        node.command("mcp-inspector", "--cli", url, "--transport", "http", *args),
        capture_output=True,
        text=True,
        timeout=120,
        env=node.env(),
    )


def test_inspector_sees_and_calls_only_what_the_wristband_allows(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    header = f"x-mcp-authorized: {mint(READER)}"
    with gateway(wristband_config(upstream_url), env=KEY_ENV) as url:
        listing = inspector(url + "/mcp", "--header", header, "--method", "tools/list")
        called = inspector(
            url + "/mcp", "--header", header, "--method", "tools/call", "--tool-name", "echo_get_item",
            "--tool-arg", "itemId=b9",
        )  # fmt: skip
        refused = inspector(
            url + "/mcp", "--header", header, "--method", "tools/call", "--tool-name", "echo_delete_item",
            "--tool-arg", "itemId=b9",
        )  # fmt: skip
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert {tool["name"] for tool in json.loads(listing.stdout)["tools"]} == {"echo_get_item", "echo_search_items"}
    assert called.returncode == 0, called.stdout + called.stderr
    assert json.loads(called.stdout)["structuredContent"]["path"] == "/items/b9"
    # To the Inspector, a tool the wristband does not allow does not exist.
    assert refused.returncode != 0 and "'echo_delete_item' not found on server" in refused.stderr
    assert [r.path for r in upstream.requests] == ["/items/b9"]
