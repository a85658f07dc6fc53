"""Upstream responses checked against the tools' output schemas, through the real gateway and the official client."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.support.gateway import GatewayFactory
from tests.support.mcp import mcp_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def drift_config(upstream_url: str, **overrides: Any) -> dict[str, Any]:
    upstream = {"name": "drift", "base_url": upstream_url, "openapi": {"source": "drift.yaml"}, **overrides}
    return {
        "groups": [{"name": "default", "upstreams": ["drift"], "inbound_auth": {"strategy": "none"}}],
        "upstreams": [upstream],
    }


async def test_a_conforming_response_is_structured_content(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(drift_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            result = await client.call_tool("drift_get_echo", {})
    assert result.is_error is False
    assert result.structured_content is not None and result.structured_content["path"] == "/echo"


async def test_a_drifting_response_is_an_error_result_that_keeps_the_data(
    gateway: GatewayFactory, upstream_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="mcp_anything")
    # configure_logging (run by other tests through the CLI) stops propagation to the capturing root logger
    monkeypatch.setattr(logging.getLogger("mcp_anything"), "propagate", True)
    with gateway(drift_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp") as client:
            # The client would raise on a successful result that contradicts the outputSchema; it does not.
            item = await client.call_tool("drift_get_item", {"itemId": "secret-42"})
            numbers = await client.call_tool("drift_get_numbers", {})
    assert item.is_error is True and item.structured_content is None
    text = item.content[0].text
    assert "does not match the output schema" in text and "GET /items/{itemId}" in text
    assert "path: '/items/secret-42' is not of type 'integer'" in text
    assert json.loads(text.split("\n", 1)[1])["path"] == "/items/secret-42"  # the data, after the mismatch
    assert numbers.is_error is True and "result[0]: 1 is not of type 'string'" in numbers.content[0].text
    assert numbers.content[0].text.endswith("[1, 2, 3]")

    warnings = [r for r in caplog.records if "output schema" in r.getMessage()]
    assert [r.fields for r in warnings] == [
        {"tool": "drift_get_item", "upstream": "drift", "where": "path", "keyword": "type"},
        {"tool": "drift_get_numbers", "upstream": "drift", "where": "result[0]", "keyword": "type"},
    ]
    logged = [r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records]
    assert not any("secret-42" in line for line in logged)


async def test_output_schemas_off(gateway: GatewayFactory, upstream_url: str) -> None:
    with gateway(drift_config(upstream_url, output_schemas=False)) as url:
        async with mcp_client(url + "/mcp") as client:
            tools = (await client.list_tools()).tools
            item = await client.call_tool("drift_get_item", {"itemId": "7"})
            numbers = await client.call_tool("drift_get_numbers", {})
    assert [t.output_schema for t in tools] == [None, None, None]
    assert item.is_error is False and item.structured_content is not None
    assert item.structured_content["path"] == "/items/7"
    assert numbers.is_error is False and numbers.structured_content is None
    assert numbers.content[0].text == "[1, 2, 3]"
