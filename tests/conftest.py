"""Shared fixtures: a real recording upstream and real gateways, each on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.streamable_http import streamable_http_client

from mcp_anything.app import create_app
from mcp_anything.config import parse_config
from tests.support.idp import IdP
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream

SPECS = Path(__file__).parent / "specs"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def idp_server() -> Iterator[IdP]:
    """A real OAuth/OIDC server (oauth2-mock-server), one per test module."""
    with IdP() as server:
        yield server


@pytest.fixture
def idp(idp_server: IdP) -> IdP:
    """The module's identity provider, back to its defaults for each test (keys and issued tokens stay)."""
    idp_server.reset()
    return idp_server


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[tuple[RecordingUpstream, str]]:
    app = RecordingUpstream()
    with ServerThread(app) as server:
        yield app, server.url


@pytest.fixture
def upstream(upstream_server: tuple[RecordingUpstream, str]) -> RecordingUpstream:
    app, _ = upstream_server
    app.clear()
    return app


@pytest.fixture
def upstream_url(upstream_server: tuple[RecordingUpstream, str]) -> str:
    return upstream_server[1]


def echo_config(upstream_url: str, **upstream_overrides: Any) -> dict[str, Any]:
    """A config serving tests/specs/echo.yaml from the recording upstream as group `default` at /mcp."""
    return {
        "groups": [
            {"name": "default", "endpoint": "/mcp", "upstreams": ["echo"], "inbound_auth": {"strategy": "none"}}
        ],
        "upstreams": [
            {
                "name": "echo",
                "tool_prefix": "echo",
                "base_url": upstream_url,
                "timeout": "2s",
                "openapi": {"source": "echo.yaml"},
                **upstream_overrides,
            }
        ],
    }


GatewayFactory = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def gateway() -> GatewayFactory:
    """`with gateway(raw_config) as url:` serves a real gateway for that config; url ends at the server root."""

    @contextmanager
    def start(raw: dict[str, Any], base_dir: Path = SPECS, env: dict[str, str] | None = None) -> Iterator[str]:
        config = parse_config(raw, base_dir=base_dir, env=env or {})
        with ServerThread(create_app(config), lifespan="on") as server:
            yield server.url

    return start


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
