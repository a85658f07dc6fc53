"""Benchmark `tools/call` through mcp-anything, side by side with the direct upstream call and FastMCP.

Each server runs in its own process on 127.0.0.1: a small uvicorn upstream API, the gateway
(`mcp-anything serve`), and, when `fastmcp` is installed, `FastMCP.from_openapi` over the same spec.
The load generator (this process, aiohttp) sends the same operation to each target:

- sequential: one client, `--calls` calls, latency p50/p99;
- concurrent: `--concurrency` clients for `--seconds`, throughput and p50/p99.

MCP targets are driven as the 2025-11-25 protocol (initialize once, then tools/call with the session);
the gateway is also measured on the stateless 2026-07-28 protocol.

    python scripts/bench.py [--calls 2000] [--seconds 10] [--concurrency 16] [--no-fastmcp]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "bench", "version": "1"},
    "paths": {
        "/items/{itemId}": {
            "get": {
                "operationId": "getItem",
                "summary": "Get an item",
                "parameters": [
                    {"name": "itemId", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "detail", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {
                    "200": {
                        "description": "the item",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                                }
                            }
                        },
                    }
                },
            }
        }
    },
}


# --- servers (each started as `python scripts/bench.py --serve-...` in its own process) ------------


async def upstream_app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
    if scope["type"] != "http":
        return
    item_id = scope["path"].rsplit("/", 1)[-1]
    body = json.dumps({"id": int(item_id) if item_id.isdigit() else 0, "name": "widget"}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def serve_upstream(port: int) -> None:
    import uvicorn

    uvicorn.run(upstream_app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop")


def serve_fastmcp(port: int, upstream_url: str) -> None:
    import httpx2
    from fastmcp import FastMCP
    from fastmcp.server.providers.openapi.routing import MCPType, RouteMap

    client = httpx2.AsyncClient(base_url=upstream_url)
    mcp = FastMCP.from_openapi(SPEC, client=client, name="bench", route_maps=[RouteMap(mcp_type=MCPType.TOOL)])
    mcp.run(transport="http", host="127.0.0.1", port=port, show_banner=False, log_level="warning")


# --- load generation -------------------------------------------------------------------------------

HANDSHAKE = "2025-11-25"
MODERN = "2026-07-28"
ACCEPT = "application/json, text/event-stream"


@dataclass
class Target:
    name: str
    url: str
    kind: str  # direct | mcp | mcp-modern


async def _mcp_session(http: aiohttp.ClientSession, url: str) -> str:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
    }
    async with http.post(url, json=init, headers={"Accept": ACCEPT}) as response:
        session = response.headers["mcp-session-id"]
        await response.read()
    headers = {"Accept": ACCEPT, "Mcp-Session-Id": session, "MCP-Protocol-Version": HANDSHAKE}
    async with http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers) as r:
        await r.read()
    return session


def _caller(http: aiohttp.ClientSession, target: Target, tool: str, session: str | None) -> Callable[[int], Any]:
    if target.kind == "direct":

        async def direct(i: int) -> None:
            async with http.get(f"{target.url}/items/{i % 1000}", params={"detail": "true"}) as response:
                assert response.status == 200
                await response.read()

        return direct

    arguments = {"itemId": 0, "detail": True}
    if target.kind == "mcp":
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": session or "", "MCP-Protocol-Version": HANDSHAKE}
        meta: dict[str, Any] = {}
    else:
        headers = {"Accept": ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool}
        meta = {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        }

    async def call(i: int) -> None:
        arguments["itemId"] = i % 1000
        body = {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, **meta},
        }
        async with http.post(target.url, json=body, headers=headers) as response:
            payload = await response.read()
            assert response.status == 200 and b'"isError":true' not in payload, payload[:300]

    return call


@dataclass
class Stats:
    count: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.count / self.seconds


def _percentiles(latencies: list[float], seconds: float) -> Stats:
    ordered = sorted(latencies)
    return Stats(
        len(ordered),
        seconds,
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


async def measure(target: Target, tool: str, calls: int, seconds: float, concurrency: int) -> tuple[Stats, Stats]:
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as http:
        session = await _mcp_session(http, target.url) if target.kind == "mcp" else None
        call = _caller(http, target, tool, session)
        for i in range(200):  # warm up connections, caches and the JIT-free interpreter's branch paths
            await call(i)
        latencies = []
        started = time.perf_counter()
        for i in range(calls):
            t0 = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t0)
        sequential = _percentiles(latencies, time.perf_counter() - started)

        concurrent_latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            i = w * 1_000_000
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await call(i)
                concurrent_latencies.append(time.perf_counter() - t0)
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        concurrent = _percentiles(concurrent_latencies, time.perf_counter() - started)
    return sequential, concurrent


# --- orchestration ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
            with socket.create_connection((host, int(port)), timeout=0.2):
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def _process(argv: list[str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            _wait_http(url)
        except RuntimeError:
            process.kill()
            raise RuntimeError(f"{' '.join(argv)} did not start: {process.communicate()[1].decode()[-2000:]}") from None
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _fastmcp_available() -> bool:
    try:
        import fastmcp  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-fastmcp", action="store_true")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-fastmcp", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return
    if args.serve_fastmcp:
        serve_fastmcp(int(args.serve_fastmcp[0]), args.serve_fastmcp[1])
        return

    python = sys.executable
    here = str(Path(__file__).resolve())
    upstream_port, gateway_port, fastmcp_port = _free_port(), _free_port(), _free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        Path(tmp, "spec.json").write_text(json.dumps(SPEC))
        config = {
            "server": {"host": "127.0.0.1", "port": gateway_port},
            "groups": [{"name": "bench", "endpoint": "/mcp", "upstreams": ["items"]}],
            "upstreams": [
                {"name": "items", "tool_prefix": "", "base_url": upstream_url, "openapi": {"source": "spec.json"}}
            ],
        }
        Path(tmp, "config.json").write_text(json.dumps(config))
        stack.enter_context(_process([python, here, "--serve-upstream", str(upstream_port)], upstream_url))
        gateway_url = f"http://127.0.0.1:{gateway_port}/mcp"
        serve = [
            python,
            "-m",
            "mcp_anything",
            "serve",
            "--config",
            str(Path(tmp, "config.json")),
            "--log-level",
            "warning",
        ]
        stack.enter_context(_process(serve, gateway_url))
        targets = [
            (Target("direct upstream (aiohttp GET)", upstream_url, "direct"), ""),
            (Target("mcp-anything, 2025-11-25 session", gateway_url, "mcp"), "get_item"),
            (Target("mcp-anything, 2026-07-28 stateless", gateway_url, "mcp-modern"), "get_item"),
        ]
        if not args.no_fastmcp and _fastmcp_available():
            fastmcp_url = f"http://127.0.0.1:{fastmcp_port}/mcp"
            stack.enter_context(
                _process([python, here, "--serve-fastmcp", str(fastmcp_port), upstream_url], fastmcp_url)
            )
            targets.append((Target("FastMCP.from_openapi, 2025-11-25", fastmcp_url, "mcp"), "getItem"))

        print(
            f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; calls={args.calls} "
            f"seconds={args.seconds} concurrency={args.concurrency}"
        )
        header = f"{'target':<38} {'seq p50':>8} {'seq p99':>8} {'seq rps':>8} | {'conc rps':>9} {'p50':>7} {'p99':>7}"
        print(header)
        print("-" * len(header))
        results: dict[str, tuple[Stats, Stats]] = {}
        for target, tool in targets:
            sequential, concurrent = asyncio.run(measure(target, tool, args.calls, args.seconds, args.concurrency))
            results[target.name] = (sequential, concurrent)
            print(
                f"{target.name:<38} {sequential.p50_ms:>7.3f}m {sequential.p99_ms:>7.3f}m {sequential.rps:>8.0f} |"
                f" {concurrent.rps:>9.0f} {concurrent.p50_ms:>6.2f}m {concurrent.p99_ms:>6.2f}m"
            )
        direct_seq, _ = results[targets[0][0].name]
        for target, _ in targets[1:]:
            sequential, concurrent = results[target.name]
            print(
                f"overhead over direct, p50 sequential: {sequential.p50_ms - direct_seq.p50_ms:.3f} ms  ({target.name})"
            )
        fast = [name for name in results if name.startswith("FastMCP")]
        if fast:
            fast_rps = results[fast[0]][1].rps
            for target, _ in targets[1:3]:
                ratio = results[target.name][1].rps / fast_rps
                print(f"concurrent throughput vs FastMCP: {ratio:.2f}x  ({target.name})")


if __name__ == "__main__":
    main()
