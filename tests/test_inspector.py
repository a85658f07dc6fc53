"""MCP Inspector's CLI (a real, independent MCP client on Node 24) against a real gateway."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support import node
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.slow, pytest.mark.node]


def inspector(url: str, *args: str) -> dict:
    run = subprocess.run(
        node.command("mcp-inspector", "--cli", url, "--transport", "http", *args),
        capture_output=True,
        text=True,
        timeout=120,
        env=node.env(),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def test_inspector_lists_and_calls_tools(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        listing = inspector(url + "/mcp", "--method", "tools/list")
        called = inspector(
            url + "/mcp", "--method", "tools/call", "--tool-name", "echo_get_item", "--tool-arg", "itemId=a/b"
        )
    names = {tool["name"] for tool in listing["tools"]}
    assert {"echo_get_item", "echo_create_item"} <= names
    assert called.get("isError") is False
    assert called["structuredContent"]["path"] == "/items/a/b"
    assert upstream.last.raw_path == "/items/a%2Fb"
