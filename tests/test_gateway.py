"""The core gateway end to end: a real gateway, a real recording upstream, the official MCP client."""

from __future__ import annotations

import base64
import re

import httpx2
import pytest

from tests.support.gateway import GatewayFactory, echo_config
from tests.support.mcp import INITIALIZE, mcp_client
from tests.support.servers import free_port
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_lists_every_operation_as_a_tool_on_both_protocols(
    gateway: GatewayFactory, upstream_url: str, mode: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp", mode=mode) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"echo_get_item", "echo_search_items", "echo_create_item", "echo_replace_tags", "echo_delete_item"} <= set(
        tools
    )
    assert all(NAME_RE.match(name) for name in tools)
    long_name = next(n for n in tools if n.startswith("echo_retrieve_the_comprehensive"))
    assert len(long_name) <= 64
    assert any(n.startswith("echo_get_reports") for n in tools), "no operationId: <method>_<path slug>"

    get_item = tools["echo_get_item"]
    assert get_item.annotations is not None and get_item.annotations.read_only_hint is True
    assert get_item.input_schema["required"] == ["itemId"]
    assert get_item.input_schema["properties"]["verbose"]["type"] == "boolean"
    delete = tools["echo_delete_item"].annotations
    assert delete is not None and delete.destructive_hint is True and delete.idempotent_hint is True
    assert tools["echo_get_numbers"].output_schema is not None

    create = tools["echo_create_item"].input_schema
    assert create["required"] == ["name"]
    assert create["properties"]["kind"]["enum"] == ["tool", "toy"]
    assert "X-Request-Id" in create["properties"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_call_becomes_a_real_upstream_request(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, mode: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp", mode=mode) as client:
            result = await client.call_tool("echo_get_item", {"itemId": "42", "verbose": True})
    assert result.is_error is False
    assert upstream.last.method == "GET"
    assert upstream.last.path == "/items/42"
    assert upstream.last.query == [("verbose", "true")]
    assert result.structured_content is not None and result.structured_content["path"] == "/items/42"
    assert result.content[0].type == "text" and '"/items/42"' in result.content[0].text


@pytest.mark.parametrize("value", ["../admin", "a/b", "x?y=1#z", "%2e%2e", "a b&c=d", "..."])
async def test_path_parameters_never_leave_their_segment(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, value: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("echo_get_item", {"itemId": value})
    assert result.is_error is False
    recorded = upstream.last
    assert recorded.query == []
    segments = recorded.raw_path.split("?")[0].split("/")
    assert segments[:2] == ["", "items"] and len(segments) == 3, recorded.raw_path
    assert recorded.path == f"/items/{value}"


@pytest.mark.parametrize("value", ["..", "."])
async def test_dot_segments_are_refused(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, value: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("echo_get_item", {"itemId": value})
    assert result.is_error is True and "itemId" in result.content[0].text
    assert upstream.requests == []


async def test_query_headers_cookies_and_gateway_headers(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    raw = echo_config(upstream_url, headers={"X-Client": "mcp-anything"})
    inbound = {"Authorization": "Bearer caller-token", "Cookie": "sid=caller", "x-mcp-authorized": "capability"}
    with gateway(raw) as url:
        async with mcp_client(url + "/mcp", headers=inbound) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            schema = tools["echo_search_items"].input_schema["properties"]
            assert "Authorization" not in schema, "a declared Authorization parameter must not become an argument"
            arguments = {"q": "red fish", "tags": ["a", "b c"], "X-Trace": "t-1", "session": "s1"}
            if "X-Client" in schema:
                arguments["X-Client"] = "spoofed"
            result = await client.call_tool("echo_search_items", arguments)
    assert result.is_error is False, result.content
    recorded = upstream.last
    assert recorded.query == [("q", "red fish"), ("tags", "a"), ("tags", "b c"), ("limit", "10")] or recorded.query == [
        ("q", "red fish"),
        ("tags", "a"),
        ("tags", "b c"),
    ]
    assert recorded.header("x-trace") == "t-1"
    assert recorded.header("cookie") == "session=s1"
    assert recorded.header("x-client") == "mcp-anything", "declared header parameters never override gateway headers"
    assert recorded.header("authorization") is None
    assert recorded.header("x-mcp-authorized") is None
    assert recorded.header("mcp-session-id") is None


async def test_json_bodies_flattened_and_whole(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            created = await client.call_tool(
                "echo_create_item", {"name": "hammer", "price": 9.5, "kind": "tool", "X-Request-Id": "r-1"}
            )
            tags = await client.call_tool("echo_replace_tags", {"itemId": "7", "body": ["x", "y"]})
    assert created.is_error is False and tags.is_error is False
    first, second = upstream.requests
    assert first.method == "POST" and first.path == "/items"
    assert first.header("content-type") == "application/json"
    assert first.header("x-request-id") == "r-1"
    assert created.structured_content is not None
    assert created.structured_content["body"] == {"name": "hammer", "price": 9.5, "kind": "tool"}
    assert second.method == "PUT" and second.path == "/items/7/tags"
    assert tags.structured_content is not None and tags.structured_content["body"] == ["x", "y"]


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("echo_get_item", {}, "itemId"),
        ("echo_search_items", {"q": "x", "limit": 500}, "limit"),
        ("echo_search_items", {"q": 3}, "q"),
        ("echo_create_item", {"name": "n", "kind": "weapon"}, "kind"),
        ("echo_create_item", {"name": "n", "colour": "red"}, "colour"),
        ("echo_create_item", {"name": "n", "price": -1}, "price"),
    ],
)
async def test_invalid_arguments_never_reach_the_upstream(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, tool: str, arguments: dict, expected: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    text = result.content[0].text
    assert tool in text and expected in text, text
    assert upstream.requests == []


async def test_upstream_errors_become_error_results(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            not_found = await client.call_tool("echo_get_status", {"code": 404})
            server_error = await client.call_tool("echo_get_status", {"code": 500})
            problem = await client.call_tool("echo_get_problem", {})
    assert not_found.is_error and "HTTP 404" in not_found.content[0].text
    assert "status 404 as requested" in not_found.content[0].text
    assert server_error.is_error and "HTTP 500" in server_error.content[0].text
    assert problem.is_error and "Out of stock: No pets left" in problem.content[0].text


async def test_timeouts_and_refused_connections(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    with gateway(echo_config(upstream_url, timeout="300ms")) as url:
        async with mcp_client(url + "/mcp") as client:
            slow = await client.call_tool("echo_get_slow", {"seconds": 3})
    assert slow.is_error and "did not respond within 0.3s" in slow.content[0].text

    closed = f"http://127.0.0.1:{free_port()}"
    with gateway(echo_config(closed)) as url:
        async with mcp_client(url + "/mcp") as client:
            refused = await client.call_tool("echo_get_item", {"itemId": "1"})
    assert refused.is_error and "Could not connect to upstream 'echo'" in refused.content[0].text


async def test_text_binary_and_non_object_results(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            text = await client.call_tool("echo_get_text", {})
            binary = await client.call_tool("echo_get_binary", {})
            numbers = await client.call_tool("echo_get_numbers", {})
            deleted = await client.call_tool("echo_delete_item", {"itemId": "1"})
    assert text.content[0].type == "text" and text.content[0].text == "plain text \u00e9"
    resource = binary.content[0]
    assert resource.type == "resource" and resource.resource.mime_type == "image/png"
    assert base64.b64decode(resource.resource.blob) == b"\x89PNG\r\n\x1a\n\x00\x01binary"
    assert numbers.structured_content == {"result": [1, 2, 3]}
    assert deleted.is_error is False


async def test_unknown_tool_is_a_protocol_error(gateway: GatewayFactory, upstream_url: str) -> None:
    from mcp.shared.exceptions import MCPError

    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            with pytest.raises(MCPError, match="Unknown tool: echo_nope"):
                await client.call_tool("echo_nope", {})


async def test_health_readiness_and_sessions(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["upstreams"]["echo"]["tools"] >= 10

            accept = {"Accept": "application/json, text/event-stream"}
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            assert (await http.post("/mcp", json=ping, headers=accept)).status_code == 400  # no session
            unknown = await http.post("/mcp", json=ping, headers={**accept, "Mcp-Session-Id": "nope"})
            assert unknown.status_code == 404

            init = {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": "2025-06-18"}}
            opened = await http.post("/mcp", json=init, headers=accept)
            assert opened.json()["result"]["protocolVersion"] == "2025-06-18"
            session = {**accept, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
            assert (await http.post("/mcp", json=ping, headers=session)).json()["result"] == {}
            assert (await http.delete("/mcp", headers=session)).status_code == 200
            assert (await http.post("/mcp", json=ping, headers=session)).status_code == 404

            assert (await http.post("/mcp", content=b"{not json", headers=accept)).json()["error"]["code"] == -32700
            assert (await http.post("/mcp", json=[ping], headers=accept)).status_code == 400
            assert (await http.put("/mcp", json=ping)).status_code == 405


@pytest.mark.parametrize("chunked", [0, 1])
async def test_large_responses_arrive_whole_and_oversized_ones_are_refused(
    gateway: GatewayFactory, upstream_url: str, chunked: int
) -> None:
    max_response_bytes = 10 * 1024 * 1024  # the default `max_response_bytes`

    # A result budget above the response limit: this is about what the gateway reads, not what it returns.
    with gateway(echo_config(upstream_url, max_result_bytes=2 * max_response_bytes)) as url:
        async with mcp_client(url + "/mcp") as client:
            big = await client.call_tool("echo_get_big", {"bytes": 3_000_000, "chunked": chunked})
            huge = await client.call_tool("echo_get_big", {"bytes": max_response_bytes + 1, "chunked": chunked})
    assert big.is_error is False and len(big.content[0].text) == 3_000_000
    assert huge.is_error is True and "exceeds" in huge.content[0].text


async def test_a_result_that_is_not_the_declared_json_is_an_error_the_client_accepts(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tools["echo_get_status_as_json"].output_schema is not None
            result = await client.call_tool("echo_get_status_as_json", {"code": 202})
    assert result.is_error is True
    text = result.content[0].text
    assert "HTTP 202 with text/plain" in text and "instead of the JSON result its spec declares" in text
    assert "status 202 as requested" in text
