"""Talking MCP to a gateway in tests: the official client, and the raw handshake for tests below it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.streamable_http import streamable_http_client

# What a Streamable HTTP client must accept.
ACCEPT = {"Accept": "application/json, text/event-stream"}

# A handshake-era `initialize`, for tests that speak raw JSON-RPC.
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
LIST: dict[str, Any] = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
# What any request with an unknown, ended, forged or altered Mcp-Session-Id gets (with HTTP 404).
NOT_FOUND: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": None,
    "error": {"code": -32600, "message": "Session not found or expired; send initialize"},
}


@asynccontextmanager
async def mcp_client(
    url: str,
    *,
    mode: str = "legacy",
    headers: dict[str, str] | None = None,
    message_handler: MessageHandlerFnT | None = None,
) -> AsyncIterator[Client]:
    """The official MCP Python client connected to `url` (an MCP endpoint); `message_handler` gets notifications."""
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=10) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, message_handler=message_handler) as client,
    ):
        yield client
