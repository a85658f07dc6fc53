"""A gateway driven in-process: its ASGI app with its lifespan run, requests through httpx2's ASGITransport.

No socket and no server thread, so the fast lane can cover protocol, routing and authorization.
What needs a connection stays with the real-server tests: event streams (the transport reads a
response whole) and calls that reach an upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from starlette.types import ASGIApp, Message

from mcp_anything.app import create_app
from mcp_anything.config import parse_config
from tests.support.openapi import SPECS

# Never connected to: calls in these tests that reach an upstream fail at once.
NO_UPSTREAM = "http://127.0.0.1:9"


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """The app's startup before the block and its shutdown after, as a server runs them."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    running = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await outbox.get()
        await running
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@asynccontextmanager
async def asgi_gateway(
    raw: dict[str, Any], base_dir: Path = SPECS, env: dict[str, str] | None = None
) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client whose requests go straight into a gateway built from `raw`."""
    app = create_app(parse_config(raw, base_dir=base_dir, env=env or {}))
    async with (
        lifespan(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http,
    ):
        yield http
