"""The Lua strategies end to end: a real gateway with the shipped example scripts, the official MCP
client, the recording upstream, and oauth2-mock-server as the token endpoint of get_token.lua."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support.cli import run_cli, write_config
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import INITIALIZE, mcp_client
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node]

EXAMPLES = Path(__file__).parent.parent / "examples"
SECRET = "lua-client-s3cret"
CALLER_TOKEN = "Bearer alice.caller-token-0123456789"


@pytest.fixture
def config(idp: IdP, upstream_url: str) -> dict[str, Any]:
    idp.configure(clients={"gateway": SECRET})
    raw = echo_config(
        upstream_url,
        outbound_auth={
            "strategy": "lua",
            "lua": {
                "source": str(EXAMPLES / "get_token.lua"),
                "allowed_hosts": ["127.0.0.1"],
                "params": {"token_url": idp.token_url, "client_id": "gateway", "client_secret": "${LUA_SECRET}"},
            },
        },
    )
    raw["groups"][0]["inbound_auth"] = {
        "strategy": "lua",
        "lua": {"source": str(EXAMPLES / "validate_token.lua"), "params": {"admins": "alice"}},
    }
    return raw


def issuer_of(authorization: str | None) -> str:
    assert authorization is not None and authorization.startswith("Bearer ")
    payload = authorization.removeprefix("Bearer ").split(".")[1]
    issuer: str = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iss"]
    return issuer


async def test_lua_inbound_and_outbound_through_the_gateway(
    gateway: GatewayFactory, upstream: RecordingUpstream, idp: IdP, config: dict[str, Any]
) -> None:
    with gateway(config, env={"LUA_SECRET": SECRET}) as url:
        async with mcp_client(url + "/mcp", headers={"Authorization": CALLER_TOKEN}) as client:
            for _ in range(3):
                result = await client.call_tool("echo_search_items", {"q": "fish"})
                assert result.is_error is False, result.content
    assert len(upstream.requests) == 3
    authorization = upstream.last.header("authorization")
    assert issuer_of(authorization) == idp.issuer  # the token get_token.lua fetched
    assert {r.header("authorization") for r in upstream.requests} == {authorization}  # cached by its lifetime
    assert "caller-token" not in str(upstream.last.headers)
    (token_request,) = idp.requests("/token")
    assert (token_request["auth_method"], token_request["client_id"]) == ("client_secret_post", "gateway")


@pytest.mark.parametrize("authorization", [None, "Bearer short", "Basic YWxpY2U6c2VjcmV0LXZhbHVl"])
async def test_requests_the_inbound_script_denies_get_401_and_reach_nothing(
    gateway: GatewayFactory, upstream: RecordingUpstream, idp: IdP, config: dict[str, Any], authorization: str | None
) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    with gateway(config, env={"LUA_SECRET": SECRET}) as url:
        async with httpx2.AsyncClient() as http:
            response = await http.post(url + "/mcp", json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert response.json()["error_description"] == "the authentication script denied the request"
    assert upstream.requests == []
    assert idp.requests() == []


async def test_an_upstream_401_runs_the_outbound_script_again_for_the_retry(
    gateway: GatewayFactory, upstream: RecordingUpstream, idp: IdP, config: dict[str, Any]
) -> None:
    with gateway(config, env={"LUA_SECRET": SECRET}) as url:
        async with mcp_client(url + "/mcp", headers={"Authorization": CALLER_TOKEN}) as client:
            result = await client.call_tool("echo_get_status", {"code": 401})
    assert result.is_error is True
    refused, retried = upstream.requests
    assert retried.header("authorization") != refused.header("authorization")
    assert len(idp.requests("/token")) == 2


async def test_an_outbound_script_failure_is_a_tool_error_without_the_secret(
    gateway: GatewayFactory, upstream: RecordingUpstream, idp: IdP, config: dict[str, Any]
) -> None:
    idp.configure(clients={"gateway": "rotated-secret"})
    with gateway(config, env={"LUA_SECRET": SECRET}) as url:
        async with mcp_client(url + "/mcp", headers={"Authorization": CALLER_TOKEN}) as client:
            result = await client.call_tool("echo_search_items", {"q": "fish"})
    assert result.is_error is True
    text = result.content[0].text
    assert "get_token.lua failed (runtime): token endpoint answered HTTP 401 (invalid_client)" in text
    assert SECRET not in text
    assert upstream.requests == []


def test_validate_names_the_key_of_a_broken_or_missing_script(tmp_path: Path) -> None:
    (tmp_path / "bad.lua").write_text("return headers[")
    raw = echo_config(
        "http://127.0.0.1:9",
        outbound_auth={"strategy": "lua", "lua": {"source": "missing.lua", "allowed_hosts": ["127.0.0.1"]}},
    )
    raw["groups"][0]["inbound_auth"] = {"strategy": "lua", "lua": {"source": "bad.lua"}}
    run = run_cli("validate", "--config", str(write_config(tmp_path, raw)))
    assert run.returncode == 2
    assert "groups[0].inbound_auth.lua.source: Lua syntax error: bad.lua:1: unexpected symbol near <eof>" in run.stderr
    assert f"upstreams[0].outbound_auth.lua.source: file not found: {tmp_path / 'missing.lua'}" in run.stderr
    assert "Traceback" not in run.stderr
