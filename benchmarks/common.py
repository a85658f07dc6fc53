"""What the benchmarks share: server processes, free ports, percentiles, MCP sessions and the load loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
# The real-spec corpus beside the repository.
SHARED_SPECS = ROOT.parent / "shared" / "specs"

# Each target is measured in this many slices, interleaved across the targets.
ROUNDS = 10
WARM_UP_CALLS = 200  # per target, before any is measured: connections, caches, token and key fetches

HANDSHAKE = "2025-11-25"
MODERN = "2026-07-28"
ACCEPT = "application/json, text/event-stream"

T = TypeVar("T")


# --- numbers ---------------------------------------------------------------------------------------


def percentile(samples: list[float], share: float) -> float:
    """The nearest-rank percentile: the sample below which `share` (0 to 1) of the samples fall."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


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


# --- processes -------------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its descendants still running (Linux /proc)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def spawned(
    argv: list[str], env: dict[str, str] | None = None, cpus: set[int] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    """Run a server (with `env` added to the environment, on `cpus` only when given) until the block ends;
    its output goes to a file (a pipe nobody reads would block it once full), yielded beside the process
    so a caller can show it when the server fails."""
    pin = None if cpus is None else partial(os.sched_setaffinity, 0, cpus)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, stdout=log, stderr=log, env={**os.environ, **(env or {})}, preexec_fn=pin
        )
        try:
            yield process, log
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def log_tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


@contextlib.contextmanager
def server_process(
    argv: list[str], url: str, env: dict[str, str] | None = None, cpus: set[int] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` running (see `spawned`) until the block ends, once `url` accepts connections."""
    with spawned(argv, env, cpus) as (process, log):
        try:
            _wait_listening(url, process)
        except RuntimeError:
            process.kill()
            raise RuntimeError(f"{' '.join(argv)} did not start: {log_tail(log)}") from None
        yield process


def fastmcp_server(spec: dict[str, Any], upstream_url: str) -> Any:
    """FastMCP's OpenAPI server with every route mapped to a tool."""
    import httpx2
    from fastmcp import FastMCP
    from fastmcp.server.providers.openapi.routing import MCPType, RouteMap

    client = httpx2.AsyncClient(base_url=upstream_url)
    return FastMCP.from_openapi(spec, client=client, name="bench", route_maps=[RouteMap(mcp_type=MCPType.TOOL)])


def run_fastmcp(mcp: Any, port: int) -> None:
    mcp.run(transport="http", host="127.0.0.1", port=port, show_banner=False, log_level="warning")


# --- load ------------------------------------------------------------------------------------------


async def mcp_session(http: aiohttp.ClientSession, url: str, auth: dict[str, str]) -> str:
    """A 2025-11-25 session opened at `url` (initialize, then initialized); its id."""
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


@dataclass
class Target:
    name: str
    url: str
    kind: str  # direct (GET /items/{id} on the upstream) | session (2025-11-25) | stateless (2026-07-28)
    pid: int  # the serving process, for its CPU time
    headers: dict[str, str] = field(default_factory=dict)


async def caller(http: aiohttp.ClientSession, target: Target, tool: str) -> Callable[[int], Awaitable[None]]:
    """`call(i)`: item `i % 1000` from `target`, directly or as a `tools/call` of `tool`, checked to succeed."""
    if target.kind == "direct":

        async def direct(i: int) -> None:
            async with http.get(f"{target.url}/items/{i % 1000}", params={"detail": "true"}) as response:
                assert response.status == 200
                await response.read()

        return direct

    meta: dict[str, Any] = {}
    if target.kind == "session":
        session = await mcp_session(http, target.url, target.headers)
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": session, "MCP-Protocol-Version": HANDSHAKE}
    else:
        headers = {"Accept": ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool}
        capabilities = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        meta = {"_meta": capabilities}
    headers.update(target.headers)

    async def call(i: int) -> None:
        params = {"name": tool, "arguments": {"itemId": i % 1000, "detail": True}, **meta}
        body = {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
        async with http.post(target.url, json=body, headers=headers) as response:
            payload = await response.read()
            assert response.status == 200 and b'"isError":true' not in payload, payload[:300]

    return call


async def calls_until(
    deadline: float, call: Callable[[int], Awaitable[T]], first: int = 0
) -> AsyncIterator[tuple[T, float]]:
    """`call(i)` back to back, i counting from `first`, until `deadline` (time.perf_counter):
    each call's result and its latency in seconds. One client of a load run."""
    i = first
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        result = await call(i)
        yield result, time.perf_counter() - started
        i += 1


@dataclass
class Run:
    """One target's accumulated measurements, taken in slices that a benchmark interleaves across its
    targets, so that a burst of load from elsewhere on the machine falls on every target alike."""

    call: Callable[[int], Awaitable[None]]
    cpu_seconds: Callable[[], float]  # CPU time so far of what serves the target
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0

    def stats(self) -> Stats:
        count = len(self.latencies)
        p50, p99 = percentile(self.latencies, 0.5), percentile(self.latencies, 0.99)
        return Stats(count, self.seconds, p50 * 1000, p99 * 1000, self.cpu / count * 1e6)

    async def sequential(self, calls: int, offset: int) -> None:
        """One client, `calls` calls one after the other."""
        cpu, started = self.cpu_seconds(), time.perf_counter()
        for i in range(offset, offset + calls):
            t0 = time.perf_counter()
            await self.call(i)
            self.latencies.append(time.perf_counter() - t0)
        self.seconds += time.perf_counter() - started
        self.cpu += self.cpu_seconds() - cpu

    async def concurrent(self, seconds: float, concurrency: int) -> None:
        """`concurrency` clients calling back to back for `seconds`."""
        cpu, started = self.cpu_seconds(), time.perf_counter()
        deadline = started + seconds

        async def client(c: int) -> None:
            async for _, latency in calls_until(deadline, self.call, first=c * 1_000_000):
                self.latencies.append(latency)

        await asyncio.gather(*(client(c) for c in range(concurrency)))
        self.seconds += time.perf_counter() - started
        self.cpu += self.cpu_seconds() - cpu


Caller = tuple[Callable[[int], Awaitable[None]], Callable[[], float]]  # a target's call, and its server's CPU time


async def measure(targets: list[Caller], calls: int, seconds: float, concurrency: int) -> list[tuple[Stats, Stats]]:
    """Each target's sequential and concurrent figures: first `calls` calls from one client, then
    `concurrency` clients for `seconds`, each in ROUNDS slices interleaved across the targets, so that a
    burst of load from elsewhere on the machine falls on every target alike."""
    sequential, concurrent = [], []
    for call, cpu_seconds in targets:
        for i in range(WARM_UP_CALLS):
            await call(i)
        sequential.append(Run(call, cpu_seconds))
        concurrent.append(Run(call, cpu_seconds))
    for r in range(ROUNDS):
        for run in sequential:
            await run.sequential(calls // ROUNDS, r * calls)
    for _ in range(ROUNDS):
        for run in concurrent:
            await run.concurrent(seconds / ROUNDS, concurrency)
    return [(s.stats(), c.stats()) for s, c in zip(sequential, concurrent, strict=True)]
