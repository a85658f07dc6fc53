"""What checking a 2025-11-25 session costs the gateway on each request of that session.

    python benchmarks/bench_sessions.py [--iterations 20000]

Rows, each with revocations in memory and in a real local Redis (redis-server, started here):
`SessionStore.get` (open the sealed id, ask the revocation list: the whole per-request session check),
and a whole `ping` request on a session through the gateway app in-process (ASGI calls, no sockets:
routing, Host/Origin checks, body parsing, the session check, the response). The best of five repeats
of `--iterations` calls each, in microseconds per call: wall time, and this process's CPU time (which
leaves out Redis's own work and waiting, and is less disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from mcp_anything.app import create_app
from mcp_anything.config import SessionsConfig, parse_config
from mcp_anything.server.sessions import SessionStore
from tests.support.redis import redis_server

ROOT = Path(__file__).resolve().parents[1]
KEY = "a current secret of at least thirty-two bytes"
PRINCIPAL = "jwt:3f2c6a1e-8d7b-4c55-9e0a-1b2c3d4e5f60"
CLIENT = {
    "clientInfo": {"name": "claude-code", "version": "2.1.0"},
    "capabilities": {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {}},
}


async def best_us(call: Callable[[], Awaitable[object]], iterations: int) -> tuple[float, float]:
    """(wall, CPU of this process) per call, each the best of five repeats: other load inflates wall time most."""
    wall = cpu = float("inf")
    for _ in range(5):
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range(iterations):
            await call()
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    return wall / iterations * 1e6, cpu / iterations * 1e6


async def store_get(revocations: str, iterations: int) -> tuple[float, float]:
    store = SessionStore(SessionsConfig.model_validate({"key": KEY, "revocations": revocations}))
    token = await store.open(
        principal=PRINCIPAL, caller=PRINCIPAL, protocol_version="2025-11-25", endpoint="/mcp", client=CLIENT
    )
    assert await store.get(token, "/mcp") is not None
    try:
        return await best_us(lambda: store.get(token, "/mcp"), iterations)
    finally:
        await store.aclose()


class Exchange:
    """One in-process HTTP exchange with an ASGI app: the request body in, the status out."""

    def __init__(self, app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self._app = app
        self._scope = {
            "type": "http",
            "method": "POST",
            "path": "/mcp",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "query_string": b"",
        }
        self._body = body
        self.status = 0
        self.headers: dict[bytes, bytes] = {}

    async def _receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self._body, "more_body": False}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message["headers"])

    async def __call__(self) -> None:
        await self._app(self._scope, self._receive, self._send)


async def gateway_ping(revocations: str, iterations: int) -> tuple[float, float]:
    raw = {
        "server": {"sessions": {"key": KEY, "revocations": revocations}},
        "groups": [
            {"name": "default", "endpoint": "/mcp", "upstreams": ["echo"], "inbound_auth": {"strategy": "none"}}
        ],
        "upstreams": [{"name": "echo", "base_url": "http://127.0.0.1:9", "openapi": {"source": "echo.yaml"}}],
    }
    app = create_app(parse_config(raw, base_dir=ROOT / "tests" / "specs", env={}))
    base = [(b"host", b"127.0.0.1"), (b"accept", b"application/json, text/event-stream")]
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", **CLIENT},
    }
    opened = Exchange(app, base, orjson.dumps(initialize))
    await opened()
    session = opened.headers[b"mcp-session-id"]
    ping = Exchange(app, [*base, (b"mcp-session-id", session)], b'{"jsonrpc":"2.0","id":2,"method":"ping"}')
    await ping()
    assert ping.status == 200, ping.status
    try:
        return await best_us(ping, iterations)
    finally:
        await app.sessions.aclose()
        await app.gateway.aclose()


async def run(iterations: int) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with redis_server() as redis_url:
        for name, revocations in (("memory", "memory"), ("redis", redis_url)):
            get = await store_get(revocations, iterations)
            ping = await gateway_ping(revocations, iterations)
            print(
                f"revocations {name:<7} SessionStore.get {get[0]:7.2f} us wall {get[1]:7.2f} us cpu"
                f"   ping on a session {ping[0]:7.2f} us wall {ping[1]:7.2f} us cpu"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20_000)
    asyncio.run(run(parser.parse_args().iterations))


if __name__ == "__main__":
    main()
