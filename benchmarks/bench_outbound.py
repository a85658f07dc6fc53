"""Micro-benchmark: what outbound auth adds to one upstream call.

    python -m benchmarks.bench_outbound [--calls 200000]

For each strategy, times `await auth.apply(request)` on a request shaped like
one the gateway builds (a few headers and query parameters), and subtracts the
same loop with `strategy: none`. The OAuth2 client credentials token comes from
a real token request to a local endpoint first; every timed call then uses the
cached token, which is the gateway's steady state. Target: under 0.05 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from aiohttp import web

from mcp_anything.config import parse_config
from mcp_anything.outbound import OutboundAuth, create_outbound_auth
from mcp_anything.tools import HttpRequest

TARGET_MS = 0.05


async def token_endpoint(request: web.Request) -> web.Response:
    return web.json_response({"access_token": "eyJ" + "x" * 800, "token_type": "Bearer", "expires_in": 3600})


def strategies(token_url: str) -> dict[str, dict[str, Any]]:
    return {
        "none": {"strategy": "none"},
        "bearer": {"strategy": "bearer", "bearer": {"token": "${SECRET}"}},
        "api_key (header)": {"strategy": "api_key", "api_key": {"header": "X-API-Key", "value": "${SECRET}"}},
        "api_key (query)": {"strategy": "api_key", "api_key": {"query": "api_key", "value": "${SECRET}"}},
        "oauth2_client_credentials (cached)": {
            "strategy": "oauth2_client_credentials",
            "oauth2_client_credentials": {
                "token_url": token_url,
                "client_id": "bench",
                "client_secret": "${SECRET}",
                "scopes": ["read:data"],
            },
        },
    }


def build(outbound_auth: dict[str, Any]) -> OutboundAuth:
    upstream = {"name": "api", "openapi": {"source": "api.yaml"}, "outbound_auth": outbound_auth}
    config = parse_config(
        {
            "groups": [{"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}],
            "upstreams": [upstream],
        },
        env={"SECRET": "s3cret-value"},
    )
    return create_outbound_auth(config.upstreams[0].outbound_auth, config)


async def per_call_ms(auth: OutboundAuth, calls: int) -> float:
    """Median over 7 rounds of the time per call, fresh request each call, in milliseconds."""
    rounds = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(calls):
            request = HttpRequest(
                "GET",
                "/pets/42",
                query=[("limit", "10"), ("offset", "0")],
                headers={"Accept": "application/json", "X-Request-Id": "abc", "User-Agent": "mcp-anything"},
            )
            await auth.apply(request)
        rounds.append((time.perf_counter() - started) / calls * 1000)
    return statistics.median(rounds)


async def main(calls: int) -> None:
    app = web.Application()
    app.router.add_post("/token", token_endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        results = {}
        for name, outbound_auth in strategies(f"http://127.0.0.1:{port}/token").items():
            auth = build(outbound_auth)
            await auth.apply(HttpRequest("GET", "/"))  # the token fetch happens here, outside the timing
            results[name] = await per_call_ms(auth, calls)
            await auth.aclose()
    finally:
        await runner.cleanup()

    baseline = results["none"]
    print(f"{calls} calls x 7 rounds, median; 'added' is over strategy none ({baseline * 1000:.2f} us/call)")
    print(f"{'strategy':38} {'us/call':>9} {'added us':>9}  target < {TARGET_MS * 1000:.0f} us")
    for name, ms in results.items():
        added = ms - baseline
        verdict = "" if name == "none" else ("ok" if added < TARGET_MS else "OVER")
        print(f"{name:38} {ms * 1000:9.2f} {added * 1000:9.2f}  {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().calls))
