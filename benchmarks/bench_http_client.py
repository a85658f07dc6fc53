"""What the shared outbound client adds to an upstream call, against aiohttp used directly.

    python benchmarks/bench_http_client.py [--calls 2000] [--rounds 9]

A small aiohttp web server on 127.0.0.1 (in this process's event loop) answers `GET /item` with a
300-byte JSON body. Each round sends `--calls` sequential requests two ways, alternating:

- *aiohttp*: one pooled `ClientSession`, `session.request(..., allow_redirects=False)` and
  `read_capped`, as `Upstream` did before the shared client;
- *http_client*: `AsyncHttpClient.request` with the upstream's policy (no redirects, no credentials),
  as `Upstream` does now.

Figures: process CPU time per call (client and server share the process, so both include the same
server cost), best and median round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from mcp_anything.http_client import AsyncHttpClient, HttpPolicy, read_capped

BODY = b'{"id": 7, "name": "' + b"x" * 260 + b'", "ok": true}'


async def item(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/item", item)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/item"
    headers = {"Accept": "application/json"}
    policy = HttpPolicy(timeout=10, max_body=10 << 20, connect_timeout=5, read_timeout=5)
    client = AsyncHttpClient(policy)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
        timeout=client.timeout(policy.timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
    )

    async def direct() -> None:
        async with session.request("GET", url, headers=headers, allow_redirects=False) as response:
            await read_capped(response, policy.max_body)

    async def shared() -> None:
        await client.request("GET", url, headers=headers)

    ways: dict[str, Callable[[], Awaitable[None]]] = {"aiohttp": direct, "http_client": shared}
    results: dict[str, list[float]] = {name: [] for name in ways}
    for way in ways.values():  # warm up: connections open, code paths hot
        for _ in range(200):
            await way()
    for _ in range(args.rounds):
        for name, way in ways.items():
            started = time.process_time()
            for _ in range(args.calls):
                await way()
            results[name].append((time.process_time() - started) / args.calls * 1e6)
    await session.close()
    await client.aclose()
    await runner.cleanup()
    print(f"{'way':<12} {'best us/call':>13} {'median us/call':>15}")
    for name, figures in results.items():
        print(f"{name:<12} {min(figures):>13.1f} {statistics.median(figures):>15.1f}")


if __name__ == "__main__":
    asyncio.run(main())
