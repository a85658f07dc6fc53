"""Per-user tools for JWT callers end to end: tokens from the real IdP (oauth2-mock-server), the
issue's CEL rules and capability claims carried in the token, through a real gateway with the
official MCP client."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import mcp_client
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node]

AUDIENCE = "mcp-gateway"
RULES = {
    "default": "deny",
    "rules": [
        {"effect": "deny", "when": 'jwt.sub.startsWith("svc-")', "tools": ["echo_delete_*"]},
        {"effect": "allow", "when": 'jwt.sub == "alice" || "admins" in jwt.groups', "tools": ["*"]},
        {"effect": "allow", "when": 'jwt.team == "ops"', "tools": ["echo_get_*", "echo_search_*"]},
    ],
}


def jwt_config(upstream_url: str, idp: IdP, authorization: dict[str, Any]) -> dict[str, Any]:
    raw = echo_config(upstream_url)
    raw["groups"][0]["inbound_auth"] = {"strategy": "jwt", "jwt": {"issuer": idp.issuer, "audience": AUDIENCE}}
    raw["groups"][0]["authorization"] = authorization
    return raw


async def tools_and_call(url: str, token: str, tool: str) -> tuple[set[str], bool]:
    """The tools the token's caller sees, and whether calling `tool` went through."""
    async with mcp_client(url + "/mcp", headers={"Authorization": f"Bearer {token}"}) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        try:
            await client.call_tool(tool, {"itemId": "5"})
        except MCPError as exc:
            assert f"Unknown tool: {tool}" in str(exc)
            return listed, False
        return listed, True


async def test_the_issue_rules_for_three_jwt_callers(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    alice = idp.token(aud=AUDIENCE, sub="alice", groups=[])
    robot = idp.token(aud=AUDIENCE, sub="svc-cleanup", groups=["admins"])
    olga = idp.token(aud=AUDIENCE, sub="olga", team="ops", groups=[])
    with gateway(jwt_config(upstream_url, idp, RULES)) as url:
        alice_tools, alice_deleted = await tools_and_call(url, alice, "echo_delete_item")
        robot_tools, robot_deleted = await tools_and_call(url, robot, "echo_delete_item")
        olga_tools, olga_got = await tools_and_call(url, olga, "echo_get_item")
        _, olga_deleted = await tools_and_call(url, olga, "echo_delete_item")
    assert alice_deleted and not robot_deleted and olga_got and not olga_deleted
    assert "echo_delete_item" in alice_tools
    assert robot_tools == alice_tools - {"echo_delete_item"}  # deny wins over the admins allow
    assert olga_tools == {t for t in alice_tools if t.startswith(("echo_get_", "echo_search_"))}
    assert [(r.method, r.path) for r in upstream.requests] == [("DELETE", "/items/5"), ("GET", "/items/5")]


async def test_capabilities_carried_in_the_inbound_token(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    authorization = {"capabilities": {"source": "claim"}}
    reader = idp.token(aud=AUDIENCE, sub="r", **{"allowed-capabilities": {"tools": {"echo": ["get_item"]}}})
    as_text = idp.token(aud=AUDIENCE, sub="t", **{"allowed-capabilities": '{"tools": {"echo": ["delete_item"]}}'})
    without = idp.token(aud=AUDIENCE, sub="n")
    with gateway(jwt_config(upstream_url, idp, authorization)) as url:
        assert await tools_and_call(url, reader, "echo_delete_item") == ({"echo_get_item"}, False)
        assert await tools_and_call(url, as_text, "echo_delete_item") == ({"echo_delete_item"}, True)
        assert await tools_and_call(url, without, "echo_get_item") == (set(), False)
    assert [(r.method, r.path) for r in upstream.requests] == [("DELETE", "/items/5")]
