"""Gateways for tests: the standard echo config, and serving a config on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from mcp_anything.app import create_app
from mcp_anything.config import parse_config
from tests.support.openapi import SPECS
from tests.support.servers import ServerThread

GatewayFactory = Callable[..., AbstractContextManager[str]]


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


@contextmanager
def serve(raw: dict[str, Any], base_dir: Path = SPECS, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real gateway for `raw` on 127.0.0.1; yields the server root URL."""
    config = parse_config(raw, base_dir=base_dir, env=env or {})
    with ServerThread(create_app(config), lifespan="on") as server:
        yield server.url
