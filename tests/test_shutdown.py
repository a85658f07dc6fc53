"""Graceful shutdown of a real `mcp-anything serve` process: SIGTERM with a slow call in flight."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
import yaml

from tests.support.cli import serving_process
from tests.support.gateway import echo_config
from tests.support.mcp import ACCEPT, INITIALIZE
from tests.support.openapi import SPECS
from tests.support.servers import free_port
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@contextmanager
def serve(tmp_path: Path, upstream_url: str, shutdown_timeout: str) -> Iterator[tuple[subprocess.Popen, str]]:
    port = free_port()
    raw = echo_config(upstream_url, timeout="30s")
    raw["upstreams"][0]["openapi"]["source"] = str(SPECS / "echo.yaml")
    raw["server"] = {"host": "127.0.0.1", "port": port, "shutdown_timeout": shutdown_timeout}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    with serving_process(config, port) as served:
        yield served


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def wait_for_request(upstream: RecordingUpstream, path: str) -> None:
    for _ in range(200):
        if any(r.path == path for r in upstream.requests):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the upstream never received {path}")


async def test_sigterm_lets_the_in_flight_call_finish(
    tmp_path: Path, upstream: RecordingUpstream, upstream_url: str
) -> None:
    with serve(tmp_path, upstream_url, shutdown_timeout="10s") as (process, url):
        port = int(url.rsplit(":", 1)[1])
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            opened = await http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
            session = {**ACCEPT, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
            stream = asyncio.create_task(_read_event_stream(http, session))
            slow = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": _slow_call(1.5)}
            call = asyncio.create_task(http.post("/mcp", json=slow, headers=session))
            await wait_for_request(upstream, "/slow")
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            assert refuses_connections(port), "no new connections once shutdown starts"
            await asyncio.wait_for(stream, 2)  # event streams end at once: they must not hold the shutdown
            assert not call.done()
            response = await call
            finished = time.monotonic()
        assert response.status_code == 200
        result = response.json()["result"]
        assert result["isError"] is False and result["structuredContent"] == {"slow": True}
        assert await asyncio.to_thread(process.wait, 10) == SIGTERM_EXIT
        assert time.monotonic() - finished < 3


async def test_shutdown_timeout_bounds_the_wait(tmp_path: Path, upstream: RecordingUpstream, upstream_url: str) -> None:
    with serve(tmp_path, upstream_url, shutdown_timeout="500ms") as (process, url):
        async with httpx2.AsyncClient(timeout=30) as http:
            message = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {**_slow_call(5), "_meta": _modern_meta()},
            }
            headers = {
                **ACCEPT,
                "MCP-Protocol-Version": "2026-07-28",
                "Mcp-Method": "tools/call",
                "Mcp-Name": "echo_get_slow",
            }
            call = asyncio.create_task(http.post(url + "/mcp", json=message, headers=headers))
            await wait_for_request(upstream, "/slow")
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(process.wait, 10)
            elapsed = time.monotonic() - started
            response = await call
    assert exit_code == SIGTERM_EXIT
    assert elapsed < 3, f"exited {elapsed:.1f}s after SIGTERM with a 0.5s shutdown_timeout"
    # The call cut short is told so, and that it may retry: not a bare 500.
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["message"] == "The gateway is shutting down; retry the request"


# uvicorn re-raises the signal it caught once shutdown is done, so the parent sees a SIGTERM exit.
SIGTERM_EXIT = -signal.SIGTERM


def _slow_call(seconds: float) -> dict:
    return {"name": "echo_get_slow", "arguments": {"seconds": seconds}}


async def _read_event_stream(http: httpx2.AsyncClient, session: dict[str, str]) -> None:
    async with http.stream("GET", "/mcp", headers={**session, "Accept": "text/event-stream"}) as stream:
        async for _ in stream.aiter_bytes():
            pass


def _modern_meta() -> dict:
    return {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    }
