"""Spec scale: build time, spec to ready, `tools/list` latency and memory on large specs, FastMCP beside it.

    python -m benchmarks.bench_openapi [--lists 30] [--slow-lists 2] [--starts 5] [--no-fastmcp] [--timeout 600]

Specs: a generated spec with 2,000 operations over 200 inter-referencing schemas (issue #6's targets),
one with 1,000 operations over 50 schemas (the size FastMCP's published figures were for), and
Twilio's API v2010 (`../shared/specs/`). For each spec and server, each server in its own process:

- build: mcp-anything's tool build in this process (spec parsing included, best of `--repeat`);
  FastMCP's `FastMCP.from_openapi`, timed inside its server process;
- ready: wall time from starting the server process to its first `/readyz` 200 (mcp-anything,
  `python -m mcp_anything serve --config ...`), interpreter start and imports included; FastMCP has no
  readiness endpoint, so its ready is its first successful `tools/list` (session opened first);
- ready for mcp-anything is the median of `--starts` starts (short, and noisy on a shared machine);
- `tools/list` over HTTP (aiohttp), on a 2025-11-25 session and on stateless 2026-07-28: one warm-up,
  then `--lists` requests; when the warm-up took over a second, it counts and `--slow-lists` requests
  in all are timed; p50/p99 and the size of the response body;
- memory: the server process's VmRSS after ready and after the lists, and its peak (VmHWM), from
  /proc/PID/status.

Every server run is cut off after `--timeout` seconds (FastMCP takes minutes on the largest spec); a
row cut short says so and keeps what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import IO, Any, TypeVar

import aiohttp
import orjson

from benchmarks.common import (
    ACCEPT,
    HANDSHAKE,
    MODERN,
    SHARED_SPECS,
    fastmcp_server,
    free_port,
    log_tail,
    mcp_session,
    percentile,
    run_fastmcp,
    spawned,
)
from benchmarks.gen_spec import generate
from mcp_anything.config import parse_config
from mcp_anything.openapi import load_upstream_tools

TWILIO = SHARED_SPECS / "twilio" / "twilio_api_v2010.json"
NOWHERE = "http://127.0.0.1:9"  # no tool is called: only listed

READY_TARGET_S = 2.0
LIST_TARGET_MS = 20.0
RSS_TARGET_MB = 300.0

T = TypeVar("T")


@dataclass
class Row:
    spec: str
    server: str
    build_s: float | None = None
    ready_s: float | None = None
    tools: int | None = None
    body_bytes: int | None = None
    lists: dict[str, list[float]] = field(default_factory=dict)  # protocol version -> latencies (s)
    rss_ready_mb: float | None = None
    rss_after_mb: float | None = None
    peak_mb: float | None = None
    note: str = ""


# --- mcp-anything --------------------------------------------------------------------------------------


def build_in_process(source: Path, repeat: int) -> float:
    """The best time to load the spec and build every tool from it."""
    upstream = {"name": "bench", "base_url": NOWHERE, "openapi": {"source": str(source)}}
    config = parse_config(
        {
            "groups": [{"name": "g", "upstreams": ["bench"], "inbound_auth": {"strategy": "none"}}],
            "upstreams": [upstream],
        }
    )
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        load_upstream_tools(config.upstreams[0], config, "upstreams[0]")
        times.append(time.perf_counter() - started)
    return min(times)


def gateway_row(row: Row, source: Path, tmp: Path, args: argparse.Namespace) -> None:
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        # The whole listing is what is measured (search mode's own cost: benchmarks/bench_discovery.py).
        "groups": [
            {
                "name": "bench",
                "endpoint": "/mcp",
                "upstreams": ["bench"],
                "inbound_auth": {"strategy": "none"},
                "discovery": {"mode": "all"},
            }
        ],
        "upstreams": [{"name": "bench", "base_url": NOWHERE, "openapi": {"source": str(source)}}],
    }
    config_file = tmp / f"config-{port}.json"
    config_file.write_text(json.dumps(config))
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "mcp_anything", "serve", "--config", str(config_file)]

    async def ready(http: aiohttp.ClientSession) -> bool:
        async with http.get(base + "/readyz") as response:
            return response.status == 200

    # Start time is short and noisy on a shared machine: the median of several starts counts.
    readies = []
    for _ in range(args.starts - 1):
        start_only = Row(row.spec, row.server)
        asyncio.run(run_server(start_only, argv, base + "/mcp", ready, args, lists=False))
        readies.append(start_only.ready_s)
    asyncio.run(run_server(row, argv, base + "/mcp", ready, args))
    row.ready_s = statistics.median([*readies, row.ready_s])


# --- FastMCP ---------------------------------------------------------------------------------------------


def serve_fastmcp(port: int, source: str, build_file: str) -> None:
    """The FastMCP server process: builds from the spec, records how long that took, serves."""
    import fastmcp  # noqa: F401  (imported before the clock starts: build time excludes imports)

    spec = json.loads(Path(source).read_text())
    started = time.perf_counter()
    mcp = fastmcp_server(spec, NOWHERE)
    Path(build_file).write_text(str(time.perf_counter() - started))
    run_fastmcp(mcp, port)


def fastmcp_row(row: Row, source: Path, tmp: Path, args: argparse.Namespace) -> None:
    port = free_port()
    build_file = tmp / f"fastmcp-build-{port}"
    url = f"http://127.0.0.1:{port}/mcp"
    argv = [
        sys.executable,
        "-m",
        "benchmarks.bench_openapi",
        "--serve-fastmcp",
        str(port),
        str(source),
        str(build_file),
    ]

    async def ready(http: aiohttp.ClientSession) -> bool:
        session = await mcp_session(http, url, {})
        row.tools = tool_count(await post(http, url, *list_request(HANDSHAKE, session)))
        return True

    try:
        # FastMCP's event loop stays busy for seconds after sending a large listing, long enough for
        # uvicorn's 5 s keep-alive timer to drop the idle connection under the next request: one
        # connection per request (the cost of a loopback connect is nothing next to its lists).
        asyncio.run(run_server(row, argv, url, ready, args, fresh_connections=True))
    finally:
        if build_file.is_file():
            row.build_s = float(build_file.read_text())


# --- one server process, measured ------------------------------------------------------------------------


async def run_server(
    row: Row,
    argv: list[str],
    url: str,
    ready: Callable[[aiohttp.ClientSession], Awaitable[bool]],
    args: argparse.Namespace,
    *,
    lists: bool = True,
    fresh_connections: bool = False,
) -> None:
    """Start the server, wait for `ready`, time the lists, read its memory; stop it whatever happens."""
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(force_close=fresh_connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        started = time.perf_counter()
        with spawned(argv) as (process, log):
            try:
                await asyncio.wait_for(
                    measure_server(row, process, log, http, url, ready, started, args, lists), args.timeout
                )
            except TimeoutError:
                row.note = f"cut off after {args.timeout:.0f} s"
            except aiohttp.ClientError as exc:
                status = "running" if process.poll() is None else f"exit status {process.returncode}"
                raise RuntimeError(f"{type(exc).__name__}: {exc} (server {status}); log: {log_tail(log)}") from None


async def measure_server(
    row: Row,
    process: Popen[bytes],
    log: IO[bytes],
    http: aiohttp.ClientSession,
    url: str,
    ready: Callable[[aiohttp.ClientSession], Awaitable[bool]],
    started: float,
    args: argparse.Namespace,
    lists: bool,
) -> None:
    await until(lambda: ready(http), process, log)
    row.ready_s = time.perf_counter() - started
    row.rss_ready_mb, row.peak_mb = memory(process.pid)
    if not lists:
        return
    session = await mcp_session(http, url, {})
    for protocol, session_id in ((HANDSHAKE, session), (MODERN, None)):
        headers, body = list_request(protocol, session_id)
        samples = row.lists.setdefault(protocol, [])
        first, payload = await timed(post(http, url, headers, body))
        row.tools, row.body_bytes = tool_count(payload), len(payload)
        if first >= 1.0:  # warming up is noise next to a list that takes seconds: the first one counts
            samples.append(first)
        for _ in range(args.lists if first < 1.0 else args.slow_lists - 1):
            samples.append((await timed(post(http, url, headers, body)))[0])
        row.rss_after_mb, row.peak_mb = memory(process.pid)


async def until(probe: Callable[[], Awaitable[bool]], process: Popen[bytes], log: IO[bytes]) -> None:
    """Poll `probe` until it holds; connection refusals mean the server is still starting."""
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited: {log_tail(log)}")
        try:
            if await probe():
                return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.005)


def list_request(protocol: str, session: str | None) -> tuple[dict[str, str], bytes]:
    headers = {"Accept": ACCEPT, "Content-Type": "application/json", "MCP-Protocol-Version": protocol}
    params: dict[str, Any] = {}
    if protocol == HANDSHAKE:
        headers["Mcp-Session-Id"] = session or ""
    else:
        headers["Mcp-Method"] = "tools/list"
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": protocol,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    return headers, orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params})


async def post(http: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes) -> bytes:
    async with http.post(url, data=body, headers=headers) as response:
        payload = await response.read()
        if response.status != 200:
            raise RuntimeError(f"tools/list answered HTTP {response.status}: {payload[:300]!r}")
        return payload


def tool_count(payload: bytes) -> int:
    """The number of tools in a `tools/list` answer, plain JSON or one SSE event."""
    if not payload.lstrip().startswith(b"{"):
        payload = next(line[5:] for line in payload.splitlines() if line.startswith(b"data:"))
    message = orjson.loads(payload)
    if "result" not in message:
        raise RuntimeError(f"tools/list failed: {str(message)[:300]}")
    if message["result"].get("nextCursor"):
        raise RuntimeError("tools/list answered one page of several; this benchmark compares whole listings")
    return len(message["result"]["tools"])


async def timed(work: Awaitable[T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = await work
    return time.perf_counter() - started, result


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    rss, peak = (int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
    return rss, peak


# --- report ------------------------------------------------------------------------------------------------


def quantiles_ms(samples: list[float]) -> str:
    if not samples:
        return "-"
    return f"{percentile(samples, 0.5) * 1000:.1f}/{percentile(samples, 0.99) * 1000:.1f}"


def number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


HEADER = (
    f"{'spec':<19} {'server':<15} {'tools':>5} {'build s':>7} {'ready s':>7} {'n':>3} "
    f"{'list 2025 p50/p99 ms':>21} {'list 2026 p50/p99 ms':>21} {'body MB':>7} "
    f"{'RSS ready':>9} {'RSS after':>9} {'peak MB':>7}"
)


def print_row(row: Row) -> None:
    counts = {len(samples) for samples in row.lists.values()}
    print(
        f"{row.spec:<19} {row.server:<15} {number(row.tools, 'd'):>5} {number(row.build_s, '.2f'):>7} "
        f"{number(row.ready_s, '.2f'):>7} {'/'.join(map(str, sorted(counts))) or '-':>3} "
        f"{quantiles_ms(row.lists.get(HANDSHAKE, [])):>21} {quantiles_ms(row.lists.get(MODERN, [])):>21} "
        f"{number(row.body_bytes and row.body_bytes / 1e6, '.2f'):>7} {number(row.rss_ready_mb, '.0f'):>9} "
        f"{number(row.rss_after_mb, '.0f'):>9} {number(row.peak_mb, '.0f'):>7}"
        + (f"  ({row.note})" if row.note else ""),
        flush=True,
    )


def verdicts(row: Row) -> list[str]:
    """Issue #6's targets, checked on one mcp-anything row."""
    lists = [statistics.median(samples) * 1000 for samples in row.lists.values() if samples]
    checks = [
        ("spec to ready", row.ready_s, READY_TARGET_S, "s"),
        ("tools/list p50", max(lists) if lists else None, LIST_TARGET_MS, "ms"),
        ("peak RSS", row.peak_mb, RSS_TARGET_MB, "MB"),
    ]
    return [
        f"{name} {number(value, '.2f')} {unit} (target < {target:g} {unit}): "
        + ("met" if value is not None and value < target else "MISSED")
        for name, value, target, unit in checks
    ]


# --- main --------------------------------------------------------------------------------------------------


def fastmcp_version() -> str | None:
    try:
        import fastmcp
    except ImportError:
        return None
    return str(fastmcp.__version__)


def bench_spec(label: str, source: Path, tmp: Path, args: argparse.Namespace, fastmcp: str | None) -> list[Row]:
    gateway = Row(label, "mcp-anything")
    gateway.build_s = build_in_process(source, args.repeat)
    gateway_row(gateway, source, tmp, args)
    print_row(gateway)
    rows = [gateway]
    if fastmcp:
        row = Row(label, f"FastMCP {fastmcp}")
        try:
            fastmcp_row(row, source, tmp, args)
        except RuntimeError as exc:
            row.note = str(exc)[:300]
        print_row(row)
        rows.append(row)
    return rows


def import_time(starts: int) -> float:
    """Median wall time to start Python and import what `mcp-anything serve` imports: the part of
    spec to ready that does not depend on the spec."""
    # os._exit: interpreter teardown is not part of starting
    imports = "import os, mcp_anything.cli, mcp_anything.app, uvicorn, uvloop, httptools; os._exit(0)"
    argv = [sys.executable, "-c", imports]
    times = []
    for _ in range(starts):
        started = time.perf_counter()
        subprocess.run(argv, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench(args: argparse.Namespace) -> None:
    fastmcp = None if args.no_fastmcp else fastmcp_version()
    print(
        f"tools/list per protocol: 1 warm-up + {args.lists} requests ({args.slow_lists} in all if one takes > 1 s); "
        f"in-process build: best of {args.repeat}; mcp-anything ready: median of {args.starts} starts; "
        f"each server run cut off after {args.timeout:.0f} s"
        + ("" if fastmcp else "; FastMCP not installed or --no-fastmcp: no FastMCP rows")
    )
    print(f"python start + mcp-anything's imports (in every ready figure): {import_time(args.starts):.2f} s")
    print(HEADER)
    print("-" * len(HEADER))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        specs: list[tuple[str, Path]] = []
        for operations, schemas in ((2000, 200), (1000, 50)):
            spec = Path(tmp, f"generated-{operations}-{schemas}.json")
            spec.write_text(json.dumps(generate(operations, schemas)))
            specs.append((f"generated {operations}/{schemas}", spec))
        if TWILIO.is_file():
            specs.append(("twilio_api_v2010", TWILIO))
        for label, source in specs:
            rows += bench_spec(label, source, Path(tmp), args, fastmcp)
    print()
    for row in rows:
        if row.server == "mcp-anything" and row.spec != "generated 1000/50":
            print(f"{row.spec}: " + "; ".join(verdicts(row)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists", type=int, default=30, help="timed tools/list requests per protocol")
    parser.add_argument("--slow-lists", type=int, default=2, help="the same, when one list takes over a second")
    parser.add_argument("--repeat", type=int, default=3, help="in-process builds (the best counts)")
    parser.add_argument("--starts", type=int, default=5, help="mcp-anything starts per spec (the median counts)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a server run is cut off")
    parser.add_argument("--no-fastmcp", action="store_true")
    parser.add_argument("--serve-fastmcp", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fastmcp:
        port, source, build_file = args.serve_fastmcp
        serve_fastmcp(int(port), source, build_file)
        return
    bench(args)


if __name__ == "__main__":
    main()
