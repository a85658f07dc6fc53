"""Benchmark `tools/call` through mcp-anything, side by side with the direct upstream call and FastMCP.

Each server runs in its own process on 127.0.0.1: a small uvicorn upstream API, the gateway
(`mcp-anything serve`), and, when `fastmcp` is installed, `FastMCP.from_openapi` over the same spec.
The load generator (this process, aiohttp) sends the same operation to each target:

- sequential: one client, `--calls` calls, latency p50/p99;
- concurrent: `--concurrency` clients for `--seconds`, throughput and p50/p99.

MCP targets are driven as the 2025-11-25 protocol (initialize once, then tools/call with the session);
the gateway is also measured on the stateless 2026-07-28 protocol.

    python -m benchmarks.bench [--calls 2000] [--seconds 10] [--concurrency 16] [--no-fastmcp] [--micro]

`--micro` then runs the per-component micro-benchmarks beside it (each also runs on its own):
`bench_inbound` (authentication), `bench_authz` (tool filtering and CEL rules),
`bench_outbound` (outbound credentials), `bench_lua` (the Lua sandbox) and
`bench_openapi` (spec build time, `tools/list` and memory on large specs, FastMCP beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import (
    ROOT,
    ROUNDS,
    Stats,
    Target,
    caller,
    fastmcp_server,
    free_port,
    measure,
    process_cpu_seconds,
    run_fastmcp,
    server_process,
)

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


# --- servers (each started as `python -m benchmarks.bench --serve-...` in its own process) ------------


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


def upstream_argv(port: int, jwks_file: Path) -> list[str]:
    """The command serving the upstream API on `port`, in its own process."""
    return [sys.executable, "-m", "benchmarks.bench", "--serve-upstream", str(port), str(jwks_file)]


def serve_upstream(port: int, jwks_file: str) -> None:
    import uvicorn

    app = upstream_app(Path(jwks_file).read_bytes())
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop")


def serve_fastmcp(port: int, upstream_url: str) -> None:
    run_fastmcp(fastmcp_server(SPEC, upstream_url), port)


# --- load generation -------------------------------------------------------------------------------


async def _measure(targets: list[tuple[Target, str]], args: argparse.Namespace) -> list[tuple[Stats, Stats]]:
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as http:
        callers = []
        for target, tool in targets:
            callers.append((await caller(http, target, tool), partial(process_cpu_seconds, target.pid)))
        return await measure(callers, args.calls, args.seconds, args.concurrency)


# --- orchestration ----------------------------------------------------------------------------------


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
    upstream_port, gateway_port, fastmcp_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        jwks, token = _bench_keys(upstream_url)
        Path(tmp, "jwks.json").write_text(json.dumps(jwks))
        Path(tmp, "spec.json").write_text(json.dumps(SPEC))
        Path(tmp, "config.json").write_text(json.dumps(_gateway_config(gateway_port, upstream_url)))
        up = stack.enter_context(server_process(upstream_argv(upstream_port, Path(tmp, "jwks.json")), upstream_url)).pid
        config = str(Path(tmp, "config.json"))
        serve = [python, "-m", "mcp_anything", "serve", "--config", config]
        gw = stack.enter_context(server_process(serve, gateway + "/mcp")).pid
        jwt = {"Authorization": f"Bearer {token}"}
        targets = [
            (Target("direct upstream (aiohttp GET)", upstream_url, "direct", up), ""),
            (Target("mcp-anything, 2025-11-25 session", gateway + "/mcp", "session", gw), "get_item"),
            (Target("mcp-anything, 2026-07-28 stateless", gateway + "/mcp", "stateless", gw), "get_item"),
            (
                Target(
                    "mcp-anything + API key", gateway + "/mcp-apikey", "session", gw, {"X-API-Key": "bench-api-key"}
                ),
                "get_item",
            ),
            (Target("mcp-anything + JWT", gateway + "/mcp-jwt", "session", gw, jwt), "get_item"),
            (Target("mcp-anything + outbound OAuth2 (cached)", gateway + "/mcp-oauth", "session", gw), "get_item"),
        ]
        if not args.no_fastmcp and _fastmcp_available():
            fastmcp_url = f"http://127.0.0.1:{fastmcp_port}/mcp"
            fastmcp = [python, "-m", "benchmarks.bench", "--serve-fastmcp", str(fastmcp_port), upstream_url]
            pid = stack.enter_context(server_process(fastmcp, fastmcp_url)).pid
            targets.append((Target("FastMCP.from_openapi, 2025-11-25", fastmcp_url, "session", pid), "getItem"))
        _report(targets, args)
    if args.micro:
        for module in MICRO_BENCHMARKS:
            print(f"\n=== {module}", flush=True)
            subprocess.run([python, "-m", module], cwd=ROOT, check=True)


MICRO_BENCHMARKS = [
    f"benchmarks.{name}" for name in ("bench_inbound", "bench_authz", "bench_outbound", "bench_lua", "bench_openapi")
]


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
    results = asyncio.run(_measure(targets, args))
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
