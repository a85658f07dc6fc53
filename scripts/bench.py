"""Benchmark `tools/call` through mcp-anything, side by side with the direct upstream call and FastMCP.

Each server runs in its own process on 127.0.0.1: a small uvicorn upstream API, the gateway
(`mcp-anything serve`), and, when `fastmcp` is installed, `FastMCP.from_openapi` over the same spec.
The load generator (this process, aiohttp) sends the same operation to each target:

- sequential: one client, `--calls` calls, latency p50/p99;
- concurrent: `--concurrency` clients for `--seconds`, throughput and p50/p99.

MCP targets are driven as the 2025-11-25 protocol (initialize once, then tools/call with the session);
the gateway is also measured on the stateless 2026-07-28 protocol.

    python scripts/bench.py [--calls 2000] [--seconds 10] [--concurrency 16] [--no-fastmcp] [--micro]

`--micro` then runs the per-component micro-benchmarks beside it (each also runs on its own):
`bench_inbound.py` (authentication), `bench_authz.py` (tool filtering and CEL rules),
`bench_outbound.py` (outbound credentials), `bench_lua.py` (the Lua sandbox) and
`bench_openapi.py` (spec build time, `tools/list` and memory on large specs, FastMCP beside it).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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


def upstream_app(jwks: bytes) -> Callable[..., Awaitable[None]]:
    """The API under test, plus the JWKS and token endpoints the auth rows need (never on the timed path
    once keys and tokens are cached)."""
    token = json.dumps({"access_token": "bench-upstream-token", "token_type": "Bearer", "expires_in": 3600}).encode()

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/jwks":
            body = jwks
        elif path == "/token":
            body = token
        else:
            item_id = path.rsplit("/", 1)[-1]
            body = json.dumps({"id": int(item_id) if item_id.isdigit() else 0, "name": "widget"}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def serve_upstream(port: int, jwks_file: str) -> None:
    import uvicorn

    app = upstream_app(Path(jwks_file).read_bytes())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop")


def fastmcp_server(spec: dict[str, Any], upstream_url: str) -> Any:
    """FastMCP's OpenAPI server with every route mapped to a tool."""
    import httpx2
    from fastmcp import FastMCP
    from fastmcp.server.providers.openapi.routing import MCPType, RouteMap

    client = httpx2.AsyncClient(base_url=upstream_url)
    return FastMCP.from_openapi(spec, client=client, name="bench", route_maps=[RouteMap(mcp_type=MCPType.TOOL)])


def run_fastmcp(mcp: Any, port: int) -> None:
    mcp.run(transport="http", host="127.0.0.1", port=port, show_banner=False, log_level="warning")


def serve_fastmcp(port: int, upstream_url: str) -> None:
    run_fastmcp(fastmcp_server(SPEC, upstream_url), port)


# --- load generation -------------------------------------------------------------------------------

HANDSHAKE = "2025-11-25"
MODERN = "2026-07-28"
ACCEPT = "application/json, text/event-stream"


@dataclass
class Target:
    name: str
    url: str
    kind: str  # direct | mcp | mcp-modern
    pid: int  # the serving process, for its CPU time
    headers: dict[str, str] = field(default_factory=dict)


async def mcp_session(http: aiohttp.ClientSession, url: str, auth: dict[str, str]) -> str:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
    }
    async with http.post(url, json=init, headers={"Accept": ACCEPT, **auth}) as response:
        session = response.headers["mcp-session-id"]
        await response.read()
    headers = {"Accept": ACCEPT, "Mcp-Session-Id": session, "MCP-Protocol-Version": HANDSHAKE, **auth}
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
        headers.update(target.headers)
        meta: dict[str, Any] = {}
    else:
        headers = {"Accept": ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool}
        headers.update(target.headers)
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
    server_cpu_us: float  # CPU the serving process spent per call

    @property
    def rps(self) -> float:
        return self.count / self.seconds


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One target's accumulated measurements; slices of all targets are interleaved."""

    target: Target
    call: Callable[[int], Awaitable[None]]
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0

    def stats(self) -> Stats:
        ordered = sorted(self.latencies)
        return Stats(
            len(ordered),
            self.seconds,
            statistics.median(ordered) * 1000,
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            self.cpu / len(ordered) * 1e6,
        )

    async def sequential(self, calls: int, offset: int) -> None:
        cpu, started = _cpu_seconds(self.target.pid), time.perf_counter()
        for i in range(offset, offset + calls):
            t0 = time.perf_counter()
            await self.call(i)
            self.latencies.append(time.perf_counter() - t0)
        self.seconds += time.perf_counter() - started
        self.cpu += _cpu_seconds(self.target.pid) - cpu

    async def concurrent(self, seconds: float, concurrency: int) -> None:
        cpu, started = _cpu_seconds(self.target.pid), time.perf_counter()
        deadline = started + seconds

        async def worker(w: int) -> None:
            i = w * 1_000_000
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await self.call(i)
                self.latencies.append(time.perf_counter() - t0)
                i += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        self.seconds += time.perf_counter() - started
        self.cpu += _cpu_seconds(self.target.pid) - cpu


ROUNDS = 10


async def measure(targets: list[tuple[Target, str]], args: argparse.Namespace) -> list[tuple[Stats, Stats]]:
    """Sequential then concurrent, each in ROUNDS slices interleaved across targets, so a burst of load
    from elsewhere on the machine falls on every target alike."""
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as http:
        sequential, concurrent = [], []
        for target, tool in targets:
            session = await mcp_session(http, target.url, target.headers) if target.kind == "mcp" else None
            call = _caller(http, target, tool, session)
            for i in range(200):  # warm up connections, caches and token/key fetches
                await call(i)
            sequential.append(Run(target, call))
            concurrent.append(Run(target, call))
        for r in range(ROUNDS):
            for run in sequential:
                await run.sequential(args.calls // ROUNDS, r * args.calls)
        for _ in range(ROUNDS):
            for run in concurrent:
                await run.concurrent(args.seconds / ROUNDS, args.concurrency)
    return [(s.stats(), c.stats()) for s, c in zip(sequential, concurrent, strict=True)]


# --- orchestration ----------------------------------------------------------------------------------


def free_port() -> int:
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
def spawned(argv: list[str]) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    """Run a server until the block ends; its output goes to a file (a pipe nobody reads would block it
    once full), yielded beside the process so a caller can show it when the server fails."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=log)
        try:
            yield process, log
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def log_tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


@contextlib.contextmanager
def server_process(argv: list[str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    with spawned(argv) as (process, log):
        try:
            _wait_http(url)
        except RuntimeError:
            process.kill()
            raise RuntimeError(f"{' '.join(argv)} did not start: {log_tail(log)}") from None
        yield process


def _fastmcp_available() -> bool:
    try:
        import fastmcp  # noqa: F401
    except ImportError:
        return False
    return True


def _bench_keys(issuer: str) -> tuple[dict[str, Any], str]:
    """An RS256 signing key's public JWKS, and a token from it valid for an hour."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "bench", "alg": "RS256", "use": "sig"})
    now = int(time.time())
    claims = {"iss": issuer, "aud": "bench", "sub": "bench-user", "iat": now, "exp": now + 3600}
    token = jwt.encode({"alg": "RS256", "kid": "bench"}, claims, key)
    return {"keys": [key.as_dict(private=False)]}, token


def _gateway_config(port: int, upstream_url: str) -> dict[str, Any]:
    """One upstream behind four endpoints: no auth, API key, JWT, and outbound OAuth2 client credentials."""
    items = {"name": "items", "tool_prefix": "", "base_url": upstream_url, "openapi": {"source": "spec.json"}}
    oauth = {
        **items,
        "name": "items_oauth",
        "outbound_auth": {
            "strategy": "oauth2_client_credentials",
            "oauth2_client_credentials": {
                "token_url": f"{upstream_url}/token",
                "client_id": "bench",
                "client_secret": "bench-secret",
            },
        },
    }
    jwt = {"issuer": upstream_url, "jwks_url": f"{upstream_url}/jwks", "audience": "bench"}
    return {
        "server": {"host": "127.0.0.1", "port": port},
        "groups": [
            {"name": "none", "endpoint": "/mcp", "upstreams": ["items"], "inbound_auth": {"strategy": "none"}},
            {
                "name": "apikey",
                "endpoint": "/mcp-apikey",
                "upstreams": ["items"],
                "inbound_auth": {"strategy": "apikey", "apikey": {"value": "bench-api-key"}},
            },
            {
                "name": "jwt",
                "endpoint": "/mcp-jwt",
                "upstreams": ["items"],
                "inbound_auth": {"strategy": "jwt", "jwt": jwt},
            },
            {
                "name": "oauth",
                "endpoint": "/mcp-oauth",
                "upstreams": ["items_oauth"],
                "inbound_auth": {"strategy": "none"},
            },
        ],
        "upstreams": [items, oauth],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-fastmcp", action="store_true")
    parser.add_argument("--micro", action="store_true", help="also run the per-component micro-benchmarks")
    parser.add_argument("--serve-upstream", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve-fastmcp", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(int(args.serve_upstream[0]), args.serve_upstream[1])
        return
    if args.serve_fastmcp:
        serve_fastmcp(int(args.serve_fastmcp[0]), args.serve_fastmcp[1])
        return

    python = sys.executable
    here = str(Path(__file__).resolve())
    upstream_port, gateway_port, fastmcp_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        jwks, token = _bench_keys(upstream_url)
        Path(tmp, "jwks.json").write_text(json.dumps(jwks))
        Path(tmp, "spec.json").write_text(json.dumps(SPEC))
        Path(tmp, "config.json").write_text(json.dumps(_gateway_config(gateway_port, upstream_url)))
        upstream = [python, here, "--serve-upstream", str(upstream_port), str(Path(tmp, "jwks.json"))]
        up = stack.enter_context(server_process(upstream, upstream_url)).pid
        config = str(Path(tmp, "config.json"))
        serve = [python, "-m", "mcp_anything", "serve", "--config", config]
        gw = stack.enter_context(server_process(serve, gateway + "/mcp")).pid
        jwt = {"Authorization": f"Bearer {token}"}
        targets = [
            (Target("direct upstream (aiohttp GET)", upstream_url, "direct", up), ""),
            (Target("mcp-anything, 2025-11-25 session", gateway + "/mcp", "mcp", gw), "get_item"),
            (Target("mcp-anything, 2026-07-28 stateless", gateway + "/mcp", "mcp-modern", gw), "get_item"),
            (
                Target("mcp-anything + API key", gateway + "/mcp-apikey", "mcp", gw, {"X-API-Key": "bench-api-key"}),
                "get_item",
            ),
            (Target("mcp-anything + JWT", gateway + "/mcp-jwt", "mcp", gw, jwt), "get_item"),
            (Target("mcp-anything + outbound OAuth2 (cached)", gateway + "/mcp-oauth", "mcp", gw), "get_item"),
        ]
        if not args.no_fastmcp and _fastmcp_available():
            fastmcp_url = f"http://127.0.0.1:{fastmcp_port}/mcp"
            fastmcp = [python, here, "--serve-fastmcp", str(fastmcp_port), upstream_url]
            pid = stack.enter_context(server_process(fastmcp, fastmcp_url)).pid
            targets.append((Target("FastMCP.from_openapi, 2025-11-25", fastmcp_url, "mcp", pid), "getItem"))
        _report(targets, args)
    if args.micro:
        for script in MICRO_BENCHMARKS:
            print(f"\n=== {script}", flush=True)
            subprocess.run([python, str(ROOT / "scripts" / script)], cwd=ROOT, check=True)


MICRO_BENCHMARKS = ["bench_inbound.py", "bench_authz.py", "bench_outbound.py", "bench_lua.py", "bench_openapi.py"]


def _report(targets: list[tuple[Target, str]], args: argparse.Namespace) -> None:
    print(
        f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}; "
        f"calls={args.calls} seconds={args.seconds} concurrency={args.concurrency}, {ROUNDS} interleaved rounds"
    )
    header = (
        f"{'target':<42} {'seq p50':>8} {'seq p99':>8} {'cpu/call':>9} | {'conc rps':>9} {'p50':>7} {'p99':>7}"
        f" {'cpu/call':>9}"
    )
    print(header)
    print("-" * len(header))
    results = asyncio.run(measure(targets, args))
    names = [target.name for target, _ in targets]
    for name, (seq, conc) in zip(names, results, strict=True):
        print(
            f"{name:<42} {seq.p50_ms:>6.3f}ms {seq.p99_ms:>6.3f}ms {seq.server_cpu_us:>7.0f}us |"
            f" {conc.rps:>9.0f} {conc.p50_ms:>5.2f}ms {conc.p99_ms:>5.2f}ms {conc.server_cpu_us:>7.0f}us"
        )
    print("cpu/call: CPU time of the serving process (gateway, FastMCP, or the upstream for the direct row) per call")
    direct, plain = results[0][0], results[1][0]
    print()
    for name, (seq, _) in zip(names[1:], results[1:], strict=True):
        cpu = seq.server_cpu_us - plain.server_cpu_us
        print(
            f"sequential p50 over direct {seq.p50_ms - direct.p50_ms:+.3f} ms, over the no-auth gateway"
            f" {seq.p50_ms - plain.p50_ms:+.3f} ms; server CPU per call over no-auth {cpu:+.0f} us  ({name})"
        )
    fast = [i for i, name in enumerate(names) if name.startswith("FastMCP")]
    if fast:
        fast_rps = results[fast[0]][1].rps
        for name, (_, conc) in zip(names[1:3], results[1:3], strict=True):
            print(f"concurrent throughput vs FastMCP: {conc.rps / fast_rps:.2f}x  ({name})")


if __name__ == "__main__":
    main()
