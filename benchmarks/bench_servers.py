"""The same gateway app served by uvicorn and by granian, side by side in one run.

Three processes serve on 127.0.0.1: a small upstream API (uvicorn; it counts the requests it
answers, so the run can check that every call reached it), the gateway under uvicorn with the
settings `mcp-anything serve` uses (uvloop, httptools), and the gateway under granian (ASGI
interface, uvloop, HTTP/1.1, one worker). Both gateways are built from the same config by
`create_app`. This process drives all three (aiohttp), in interleaved rounds so that a burst of
other load on the machine falls on every target alike:

- sequential: one client, `--calls` calls, latency p50/p99; the gateway's added latency is its
  p50/p99 minus the direct upstream call's;
- concurrent: `--concurrency` clients for `--seconds`, throughput and p50/p99;
- server CPU per call: CPU time of the serving process and its children (granian's worker).

Gateway calls are `tools/call` on the stateless 2026-07-28 protocol and on a 2025-11-25 session.

    python -m benchmarks.bench_servers [--calls 2000] [--seconds 10] [--concurrency 16] [--server-cpu 1]

With `--server-cpu`, both gateways run on that one CPU and everything else on the others, so each
server's throughput is what one core gives it, its own helper threads included. Without it, the
scheduler shares the cores per thread, and a server with more threads gets more of a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.common import (
    ROOT,
    ROUNDS,
    WARM_UP_CALLS,
    Stats,
    Target,
    caller,
    free_port,
    measure,
    process_cpu_seconds,
    server_process,
)

CONFIG_ENV = "BENCH_SERVERS_CONFIG"

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "bench", "version": "1"},
    "paths": {
        "/items/{itemId}": {
            "get": {
                "operationId": "getItem",
                "parameters": [
                    {"name": "itemId", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "detail", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {"200": {"description": "the item", "content": {"application/json": {"schema": {}}}}},
            }
        },
        "/count": {"get": {"operationId": "count", "responses": {"200": {"description": "requests answered"}}}},
    },
}


# --- servers, each in its own process ----------------------------------------------------------------------


def serve_upstream(port: int) -> None:
    """The recording upstream: answers items and, at /count, how many item requests it has answered."""
    import uvicorn

    answered = 0

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        nonlocal answered
        if scope["type"] != "http":
            return
        if scope["path"] == "/count":
            body = json.dumps({"answered": answered}).encode()
        else:
            answered += 1
            item_id = scope["path"].rsplit("/", 1)[-1]
            body = json.dumps({"id": int(item_id) if item_id.isdigit() else 0, "name": "widget"}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop")


def gateway_app() -> Any:
    """The gateway for the config named by $BENCH_SERVERS_CONFIG (granian calls this as its app factory)."""
    from mcp_anything.app import create_app
    from mcp_anything.config import load_config

    return create_app(load_config(os.environ[CONFIG_ENV]))


def serve_uvicorn(port: int) -> None:
    import uvicorn

    uvicorn.run(
        gateway_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
    )


def serve_granian(port: int) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        "benchmarks.bench_servers:gateway_app",
        factory=True,
        working_dir=ROOT,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        log_level=LogLevels.warning,
    ).serve()


# --- load generation ---------------------------------------------------------------------------------------


async def measure_targets(targets: list[Target], args: argparse.Namespace) -> list[tuple[Stats, Stats]]:
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as http:
        callers = [
            (await caller(http, target, "get_item"), partial(process_cpu_seconds, target.pid)) for target in targets
        ]
        return await measure(callers, args.calls, args.seconds, args.concurrency)


# --- orchestration -----------------------------------------------------------------------------------------


def write_gateway_config(directory: Path, upstream_url: str, server: dict[str, Any] | None = None) -> Path:
    """The gateway's config (one group, the items upstream, no inbound auth) and its spec, in `directory`."""
    (directory / "spec.json").write_text(json.dumps(SPEC))
    config = {
        "server": server or {},
        "groups": [{"name": "bench", "endpoint": "/mcp", "upstreams": ["items"], "inbound_auth": {"strategy": "none"}}],
        "upstreams": [
            {"name": "items", "tool_prefix": "", "base_url": upstream_url, "openapi": {"source": "spec.json"}}
        ],
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


def upstream_count(upstream_url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(upstream_url + "/count", timeout=5) as response:
        return int(json.loads(response.read())["answered"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--server-cpu",
        type=int,
        help="run both gateways on this CPU only, and the upstream and load generator on the others:"
        " throughput per core, with the servers' own threads (granian's Rust runtime) sharing it",
    )
    parser.add_argument("--serve", nargs=2, metavar=("SERVER", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        {"upstream": serve_upstream, "uvicorn": serve_uvicorn, "granian": serve_granian}[args.serve[0]](
            int(args.serve[1])
        )
        return

    ports = {name: free_port() for name in ("upstream", "uvicorn", "granian")}
    upstream_url = f"http://127.0.0.1:{ports['upstream']}"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        env = {CONFIG_ENV: str(write_gateway_config(Path(tmp), upstream_url))}
        others = None
        if args.server_cpu is not None:
            others = set(range(os.cpu_count() or 1)) - {args.server_cpu}
            os.sched_setaffinity(0, others)
        pids = {}
        for name, port in ports.items():
            cpus = others if name == "upstream" or others is None else {args.server_cpu}
            argv = [sys.executable, "-m", "benchmarks.bench_servers", "--serve", name, str(port)]
            pids[name] = stack.enter_context(server_process(argv, f"http://127.0.0.1:{port}", env, cpus)).pid
        targets = [Target("direct upstream", upstream_url, "direct", pids["upstream"])]
        for name in ("uvicorn", "granian"):
            url = f"http://127.0.0.1:{ports[name]}/mcp"
            targets.append(Target(f"{name}, 2026-07-28 stateless", url, "stateless", pids[name]))
            targets.append(Target(f"{name}, 2025-11-25 session", url, "session", pids[name]))
        print(
            f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f};"
            f" calls={args.calls} seconds={args.seconds} concurrency={args.concurrency}, {ROUNDS} interleaved rounds,"
            f" gateways on CPU {'any' if args.server_cpu is None else args.server_cpu}"
        )
        before = upstream_count(upstream_url)
        results = asyncio.run(measure_targets(targets, args))
        reached = upstream_count(upstream_url) - before
    made = sum(seq.count + conc.count for seq, conc in results) + WARM_UP_CALLS * len(targets)
    assert reached == made, f"the upstream answered {reached} item requests; {made} calls were made"
    _report(targets, results)


def _report(targets: list[Target], results: list[tuple[Stats, Stats]]) -> None:
    header = (
        f"{'target':<32} {'seq p50':>8} {'seq p99':>8} {'+p50':>7} {'+p99':>7} {'cpu/call':>8} |"
        f" {'conc rps':>8} {'p50':>7} {'p99':>7} {'cpu/call':>8}"
    )
    print(header)
    print("-" * len(header))
    direct = results[0][0]
    for target, (seq, conc) in zip(targets, results, strict=True):
        print(
            f"{target.name:<32} {seq.p50_ms:>6.3f}ms {seq.p99_ms:>6.3f}ms"
            f" {seq.p50_ms - direct.p50_ms:>5.3f}ms {seq.p99_ms - direct.p99_ms:>5.3f}ms"
            f" {seq.server_cpu_us:>6.0f}us | {conc.rps:>8.0f} {conc.p50_ms:>5.2f}ms {conc.p99_ms:>5.2f}ms"
            f" {conc.server_cpu_us:>6.0f}us"
        )
    print("+p50/+p99: sequential latency added over the direct upstream call; cpu/call: serving process tree")
    by_name = {target.name: result for target, result in zip(targets, results, strict=True)}
    for kind in ("2026-07-28 stateless", "2025-11-25 session"):
        uv, gr = by_name[f"uvicorn, {kind}"], by_name[f"granian, {kind}"]
        print(
            f"granian / uvicorn ({kind}): throughput {gr[1].rps / uv[1].rps:.2f}x,"
            f" added p50 {gr[0].p50_ms - direct.p50_ms:.3f} vs {uv[0].p50_ms - direct.p50_ms:.3f} ms,"
            f" CPU per call {gr[1].server_cpu_us:.0f} vs {uv[1].server_cpu_us:.0f} us"
        )


if __name__ == "__main__":
    main()
