"""End to end: what an inbound script adds per request, `lua` beside `js`, against no auth and an API key.

One `mcp-anything serve` (log level warning) serves the echo spec on four endpoints: no inbound auth, an
API key, and the issue's validate_token script as JavaScript (examples/validate_token.js, verbatim) and
as its Lua port (examples/lua_ports/validate_token.lua). One 2025-11-25 session per endpoint; then
`--rounds` rounds of `--calls` sequential `ping` requests, the endpoints interleaved so load from
elsewhere on the machine falls on all alike. Prints p50/p99 per endpoint and each one's p50 over no auth.

    python -m benchmarks.bench_scripts [--calls 300] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from benchmarks.common import ACCEPT, HANDSHAKE, ROOT, free_port, mcp_session, percentile, server_process

TOKEN = "Bearer " + "x" * 40  # long enough for validate_token; also the API key
ENDPOINTS = {
    "no inbound auth": ("/mcp", {"strategy": "none"}),
    "API key": ("/mcp-key", {"strategy": "api_key", "api_key": {"header": "Authorization", "value": TOKEN}}),
    "JS validate_token": ("/mcp-js", {"strategy": "js", "js": {"source": "examples/validate_token.js"}}),
    "Lua validate_token": (
        "/mcp-lua",
        {"strategy": "lua", "lua": {"source": "examples/lua_ports/validate_token.lua"}},
    ),
}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def config(port: int) -> dict[str, Any]:
    groups = [
        {"name": f"g{i}", "endpoint": endpoint, "upstreams": ["echo"], "inbound_auth": {**auth}}
        for i, (endpoint, auth) in enumerate(ENDPOINTS.values())
    ]
    for group in groups:
        script = group["inbound_auth"].get("js") or group["inbound_auth"].get("lua")
        if script:
            script["source"] = str(ROOT / script["source"])
    return {
        "server": {"host": "127.0.0.1", "port": port, "sessions": {"initialize_rate": None}},
        "groups": groups,
        "upstreams": [
            {
                "name": "echo",
                "base_url": "http://127.0.0.1:9",
                "openapi": {"source": str(ROOT / "tests/specs/echo.yaml")},
            }
        ],
    }


async def measure(base: str, calls: int, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    async with aiohttp.ClientSession() as http:
        headers = {}
        for name, (endpoint, _) in ENDPOINTS.items():
            session = await mcp_session(http, base + endpoint, {"Authorization": TOKEN})
            headers[name] = {
                "Accept": ACCEPT,
                "Mcp-Session-Id": session,
                "MCP-Protocol-Version": HANDSHAKE,
                "Authorization": TOKEN,
            }
        for _ in range(rounds):
            for name, (endpoint, _) in ENDPOINTS.items():
                for _ in range(calls):
                    started = time.perf_counter()
                    async with http.post(base + endpoint, json=PING, headers=headers[name]) as response:
                        await response.read()
                        assert response.status == 200, (name, response.status)
                    samples[name].append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config.yaml")
        path.write_text(yaml.safe_dump(config(port)))
        serve = [sys.executable, "-m", "mcp_anything", "serve", "--config", str(path), "--log-level", "warning"]
        with server_process(serve, f"http://127.0.0.1:{port}/mcp"):
            samples = asyncio.run(measure(f"http://127.0.0.1:{port}", args.calls, args.rounds))
    baseline = percentile(samples["no inbound auth"], 0.5)
    for name, values in samples.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(
            f"{name:20} p50 {p50 * 1e3:6.3f} ms  p99 {p99 * 1e3:6.3f} ms  over no auth {(p50 - baseline) * 1e3:+.3f} ms"
        )


if __name__ == "__main__":
    main()
