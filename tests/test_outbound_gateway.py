"""Outbound auth end to end: a real gateway, the recording upstream, the official MCP client, and
oauth2-mock-server as the token endpoint. The upstream sees the configured credential, never the caller's."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_cli, write_config
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import mcp_client
from tests.support.openapi import SPECS
from tests.support.upstream import Recorded, RecordingUpstream

pytestmark = pytest.mark.anyio

SECRET = "upstream-s3cret_value"
ENV = {"UPSTREAM_SECRET": SECRET}
# What the MCP client sends the gateway: none of it may reach the upstream.
CALLER = {"Authorization": "Bearer caller-token", "Cookie": "sid=caller-cookie", "x-mcp-authorized": "capability"}
SEARCH = {"q": "fish", "X-Trace": "from-the-caller"}


@pytest.fixture
def client_credentials(idp: IdP) -> dict[str, Any]:
    idp.configure(clients={"gateway": SECRET})
    return {
        "strategy": "oauth2_client_credentials",
        "oauth2_client_credentials": {
            "token_url": idp.token_url,
            "client_id": "gateway",
            "client_secret": "${UPSTREAM_SECRET}",
            "scopes": ["read:data"],
        },
    }


def jwt_issuer(authorization: str | None) -> str:
    assert authorization is not None and authorization.startswith("Bearer ")
    payload = authorization.removeprefix("Bearer ").split(".")[1]
    issuer: str = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iss"]
    return issuer


def assert_nothing_from_the_caller(recorded: Recorded) -> None:
    assert "caller-token" not in str(recorded.headers)
    assert recorded.header("cookie") is None
    assert recorded.header("x-mcp-authorized") is None
    assert recorded.header("mcp-session-id") is None


async def search(url: str) -> Any:
    async with mcp_client(url + "/mcp", headers=CALLER) as client:
        return await client.call_tool("echo_search_items", SEARCH)


StaticCheck = Callable[[Recorded], None]


def bearer_arrives(recorded: Recorded) -> None:
    assert recorded.header("authorization") == f"Bearer {SECRET}"


def header_key_arrives(recorded: Recorded) -> None:
    # X-Trace is also a declared header parameter: the caller's argument loses to the configured key.
    assert recorded.header("x-trace") == SECRET
    assert recorded.header("authorization") is None


def query_key_arrives(recorded: Recorded) -> None:
    assert ("api_key", SECRET) in recorded.query
    assert recorded.header("authorization") is None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("outbound_auth", "check"),
    [
        ({"strategy": "bearer", "bearer": {"token": "${UPSTREAM_SECRET}"}}, bearer_arrives),
        ({"strategy": "api_key", "api_key": {"header": "X-Trace", "value": "${UPSTREAM_SECRET}"}}, header_key_arrives),
        ({"strategy": "api_key", "api_key": {"query": "api_key", "value": "${UPSTREAM_SECRET}"}}, query_key_arrives),
    ],
    ids=["bearer", "api_key-header", "api_key-query"],
)
async def test_static_credentials_reach_the_upstream_and_the_callers_never_do(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    outbound_auth: dict[str, Any],
    check: StaticCheck,
) -> None:
    with gateway(echo_config(upstream_url, outbound_auth=outbound_auth), env=ENV) as url:
        result = await search(url)
    assert result.is_error is False, result.content
    check(upstream.last)
    assert_nothing_from_the_caller(upstream.last)


@pytest.mark.slow
@pytest.mark.node
async def test_client_credentials_token_reaches_the_upstream_fetched_once(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    idp: IdP,
    client_credentials: dict[str, Any],
) -> None:
    with gateway(echo_config(upstream_url, outbound_auth=client_credentials), env=ENV) as url:
        async with mcp_client(url + "/mcp", headers=CALLER) as client:
            for _ in range(5):
                result = await client.call_tool("echo_search_items", SEARCH)
                assert result.is_error is False, result.content
    assert len(upstream.requests) == 5
    assert {r.header("authorization") for r in upstream.requests} == {upstream.last.header("authorization")}
    assert jwt_issuer(upstream.last.header("authorization")) == idp.issuer
    assert upstream.last.header("x-trace") == "from-the-caller"
    assert_nothing_from_the_caller(upstream.last)
    [token_request] = idp.requests("/token")
    assert token_request["client_id"] == "gateway"
    assert token_request["form"] == {"grant_type": "client_credentials", "scope": "read:data"}


@pytest.mark.slow
@pytest.mark.node
async def test_an_upstream_401_refreshes_the_token_and_retries_once(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    idp: IdP,
    client_credentials: dict[str, Any],
) -> None:
    with gateway(echo_config(upstream_url, outbound_auth=client_credentials), env=ENV) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("echo_get_status", {"code": 401})
    assert result.is_error is True
    assert "returned HTTP 401" in result.content[0].text
    refused, retried = upstream.requests  # one retry, no more
    assert refused.path == retried.path == "/status/401"
    assert retried.header("authorization") != refused.header("authorization")  # a freshly fetched token
    assert len(idp.requests("/token")) == 2


@pytest.mark.slow
async def test_a_static_credential_refused_with_401_is_not_retried(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    bearer = {"strategy": "bearer", "bearer": {"token": "${UPSTREAM_SECRET}"}}
    with gateway(echo_config(upstream_url, outbound_auth=bearer), env=ENV) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("echo_get_status", {"code": 401})
    assert result.is_error is True
    assert len(upstream.requests) == 1


@pytest.mark.slow
@pytest.mark.node
async def test_a_token_endpoint_error_is_the_tool_error_and_nothing_reaches_the_upstream(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    idp: IdP,
    client_credentials: dict[str, Any],
) -> None:
    idp.fail("/token", 400, {"error": "invalid_scope", "error_description": "read:data is not granted"})
    with gateway(echo_config(upstream_url, outbound_auth=client_credentials), env=ENV) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("echo_search_items", SEARCH)
    assert result.is_error is True
    text = result.content[0].text
    assert text.startswith("Could not authenticate to upstream 'echo': OAuth2 token request to ")
    assert "invalid_scope: read:data is not granted (HTTP 400)" in text
    assert SECRET not in text
    assert upstream.requests == []


@pytest.mark.slow
@pytest.mark.node
async def test_an_operation_marked_auth_not_required_is_called_without_credentials(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    idp: IdP,
    client_credentials: dict[str, Any],
    tmp_path: Path,
) -> None:
    spec = yaml.safe_load((SPECS / "echo.yaml").read_text())
    spec["paths"]["/items/{itemId}"]["get"]["x-mcp-auth-required"] = False
    (tmp_path / "echo.yaml").write_text(yaml.safe_dump(spec))
    raw = echo_config(upstream_url, outbound_auth=client_credentials)
    with gateway(raw, base_dir=tmp_path, env=ENV) as url:
        async with mcp_client(url + "/mcp", headers=CALLER) as client:
            public = await client.call_tool("echo_get_item", {"itemId": "1"})
            assert idp.requests("/token") == []  # no token is fetched for it either
            protected = await client.call_tool("echo_search_items", SEARCH)
    assert public.is_error is False and protected.is_error is False
    unauthenticated, authenticated = upstream.requests
    assert unauthenticated.header("authorization") is None
    assert_nothing_from_the_caller(unauthenticated)
    assert jwt_issuer(authenticated.header("authorization")) == idp.issuer


@pytest.mark.parametrize(
    "outbound_auth",
    [
        {"strategy": "bearer", "bearer": {"token": "${UPSTREAM_SECRET}"}},
        {"strategy": "api_key", "api_key": {"query": "api_key", "value": "${UPSTREAM_SECRET}"}},
        {
            "strategy": "oauth2_client_credentials",
            "oauth2_client_credentials": {
                "token_url": "https://auth.example.com/token",
                "client_id": "gateway",
                "client_secret": "${UPSTREAM_SECRET}",
            },
        },
    ],
    ids=["bearer", "api_key", "oauth2_client_credentials"],
)
@pytest.mark.parametrize("command", [["validate"], ["tools"], ["tools", "--json"]])
def test_validate_and_tools_never_print_the_secret(
    tmp_path: Path, outbound_auth: dict[str, Any], command: list[str]
) -> None:
    path = write_config(tmp_path, echo_config("http://127.0.0.1:9", outbound_auth=outbound_auth))
    run = run_cli(*command, "--config", str(path), env=ENV)
    assert run.returncode == 0, run.stderr
    assert SECRET not in run.stdout + run.stderr


def test_a_malformed_secret_is_reported_by_key_without_its_value(tmp_path: Path) -> None:
    bearer = {"strategy": "bearer", "bearer": {"token": "${UPSTREAM_SECRET}"}}
    path = write_config(tmp_path, echo_config("http://127.0.0.1:9", outbound_auth=bearer))
    run = run_cli("validate", "--config", str(path), env={"UPSTREAM_SECRET": SECRET + "\n"})
    assert run.returncode == 2
    assert "upstreams[0].outbound_auth.bearer.token: must be printable ASCII" in run.stderr
    assert SECRET not in run.stdout + run.stderr
