"""Odd and hostile tool arguments: smuggled query keys, deep nesting, control characters in header values.

Each answer is an invalid-argument result naming the argument, and nothing undeclared reaches the upstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from mcp_anything.openapi.nesting import MAX_DEPTH
from mcp_anything.tools import ArgumentError
from tests.support.gateway import GatewayFactory
from tests.support.openapi import minimal_spec, tools_by_name
from tests.support.upstream import RecordingUpstream

OK = {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}}
FILTER = {"type": "object", "properties": {"color": {"type": "string"}, "size": {"type": "string"}}}
OPEN = {"type": "object", "properties": {"color": {"type": "string"}}, "additionalProperties": {"type": "string"}}
PARAMETERS = [
    {"name": "f", "in": "query", "schema": FILTER},
    {"name": "o", "in": "query", "schema": OPEN},
    {"name": "d", "in": "query", "style": "deepObject", "explode": True, "schema": FILTER},
    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
    {"name": "X-Note", "in": "header", "schema": {"type": "string"}},
    {"name": "doc", "in": "query", "content": {"application/json": {"schema": {"type": "object"}}}},
]
SPEC = minimal_spec({"/things": {"get": {"operationId": "things", "parameters": PARAMETERS, "responses": OK}}})
API_KEY = {"strategy": "api_key", "api_key": {"query": "api_key", "value": "${KEY:-secret}"}}


@pytest.fixture
def things(tmp_path: Path) -> Any:
    return tools_by_name(SPEC, tmp_path, outbound_auth=API_KEY)["pets_things"]


def query_of(tool: Any, arguments: dict[str, Any]) -> list[tuple[str, str]]:
    tool.validate(arguments)
    return tool.build_request(arguments).query


def test_only_declared_keys_of_an_object_query_parameter_are_sent(things: Any) -> None:
    smuggled = {"color": "red", "admin": "true", "API_KEY": "evil"}
    assert query_of(things, {"f": smuggled}) == [("color", "red")]
    assert query_of(things, {"d": smuggled}) == [("d[color]", "red")]


@pytest.mark.parametrize("key", ["API_KEY", "api_key", "Api_Key", "LIMIT", "f"])
def test_extra_keys_naming_the_credential_or_a_parameter_are_refused(things: Any, key: str) -> None:
    with pytest.raises(ArgumentError, match=f"argument 'o': key '{key}' names another query parameter"):
        query_of(things, {"o": {"color": "red", key: "evil"}})


def test_extra_keys_are_sent_when_the_schema_allows_them(things: Any) -> None:
    assert query_of(things, {"o": {"color": "red", "shade": "dark"}}) == [("color", "red"), ("shade", "dark")]


def test_a_free_form_object_keeps_its_keys_but_not_the_credential(tmp_path: Path) -> None:
    spec = minimal_spec({"/x": {"get": {"parameters": [{"name": "m", "in": "query", "schema": {}}], "responses": OK}}})
    tool = tools_by_name(spec, tmp_path, outbound_auth=API_KEY)["pets_get_x"]
    assert query_of(tool, {"m": {"a": "1", "b": "2"}}) == [("a", "1"), ("b", "2")]
    with pytest.raises(ArgumentError, match="argument 'm': key 'Api_key'"):
        query_of(tool, {"m": {"Api_key": "evil"}})


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_arguments_are_invalid_arguments(things: Any, depth: int) -> None:
    with pytest.raises(ArgumentError, match=f"argument 'doc': nested more than {MAX_DEPTH} levels deep"):
        things.validate({"doc": nested(depth)})


def test_arguments_at_the_depth_limit_are_fine(things: Any) -> None:
    things.validate({"doc": {"k": nested(MAX_DEPTH - 1)}})


@pytest.mark.parametrize("character", ["\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\r", "\n"])
def test_control_characters_in_header_values_are_invalid_arguments(things: Any, character: str) -> None:
    with pytest.raises(ArgumentError, match="argument 'X-Note': header values cannot contain control characters"):
        things.build_request({"X-Note": f"a{character}b"})


def test_tabs_stay_allowed_in_header_values(things: Any) -> None:
    assert things.build_request({"X-Note": "a\tb"}).headers["X-Note"] == "a\tb"


# --- through the real gateway ----------------------------------------------------------------------------


ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.slow
def test_hostile_arguments_through_the_gateway(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, tmp_path: Path, caplog: Any
) -> None:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    upstream_config = {"name": "api", "base_url": upstream_url, "openapi": {"source": "spec.yaml"}}
    raw = {
        "groups": [{"name": "g", "endpoint": "/mcp", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}],
        "upstreams": [{**upstream_config, "outbound_auth": API_KEY}],
    }
    # Raw JSON-RPC: the MCP client will not even serialize arguments 1,000 levels deep.
    with gateway(raw, base_dir=tmp_path) as url, httpx2.Client(base_url=url, timeout=10) as http:
        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        opened = http.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}, headers=ACCEPT
        )
        session = {**ACCEPT, "Mcp-Session-Id": opened.headers["mcp-session-id"]}

        def call(arguments: str) -> dict[str, Any]:
            """`arguments` as JSON text: no encoder here writes 1,000 levels."""
            params = f'{{"name": "api_things", "arguments": {arguments}}}'
            message = f'{{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {params}}}'
            answer = http.post("/mcp", content=message, headers=session)
            assert answer.status_code == 200, answer.text[:300]
            return answer.json()["result"]

        smuggled = call('{"f": {"color": "red", "admin": "true", "API_KEY": "evil"}}')
        assert not smuggled.get("isError")
        assert upstream.last.query == [("color", "red"), ("api_key", "secret")]
        sent = len(upstream.requests)
        refused = call('{"o": {"API_KEY": "evil"}}')
        deep = call('{"doc": ' + "[" * 1000 + "]" * 1000 + "}")
        control = call('{"X-Note": "a\\u000bb"}')
    assert len(upstream.requests) == sent
    for result, argument in ((refused, "o"), (deep, "doc"), (control, "X-Note")):
        assert result["isError"] is True
        assert f"Invalid arguments for tool 'api_things': argument '{argument}'" in result["content"][0]["text"]
    assert "Traceback" not in caplog.text and "tool call failed" not in caplog.text
