"""What the benchmarks share: server processes, free ports, percentiles, MCP sessions and the load loop."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
# The real-spec corpus beside the repository.
SHARED_SPECS = ROOT.parent / "shared" / "specs"

HANDSHAKE = "2025-11-25"
MODERN = "2026-07-28"
ACCEPT = "application/json, text/event-stream"

T = TypeVar("T")


# --- numbers ---------------------------------------------------------------------------------------


def percentile(samples: list[float], share: float) -> float:
    """The nearest-rank percentile: the sample below which `share` (0 to 1) of the samples fall."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


# --- processes -------------------------------------------------------------------------------------


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
    """`argv` running until the block ends, once `url` accepts connections."""
    with spawned(argv) as (process, log):
        try:
            _wait_http(url)
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
