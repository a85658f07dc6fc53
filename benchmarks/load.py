"""Load test: many concurrent MCP clients for a while against a real gateway process; errors, latency, leaks.

Processes, all on 127.0.0.1: the upstream API (benchmarks/bench.py's, any GET answers JSON), the gateway
(`mcp-anything serve`) over a generated spec of `--tools` operations, and with `--auth jwt...` the
test identity provider (oauth2-mock-server; tokens and JWKS). With `jwt+capabilities` (the default)
each client also sends a signed capability header granting half the tools, and every `tools/list`
it gets must list exactly those. This process runs `--clients` clients
for `--seconds`, each looping a mix of `tools/list` and `tools/call` (`--list-share`); half of them
speak the 2025-11-25 protocol (one session each), half the stateless 2026-07-28 one.

Reported:
- requests, errors (non-200 answers, JSON-RPC errors, isError results), p50/p99 per method;
- the gateway's resident memory after `--warmup` seconds and at the end (growth in %);
- the gateway's sockets and asyncio tasks before the load and after it, once the clients have
  closed and `--settle` seconds have passed (the upstream pool closes idle connections after 30 s),
  split into client connections, upstream connections and others: what is left over leaked.

    python -m benchmarks.load [--clients 50] [--seconds 60] [--warmup 10] [--auth none|jwt|jwt+capabilities]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.bench import upstream_argv
from benchmarks.common import ACCEPT, HANDSHAKE, MODERN, calls_until, free_port, percentile, server_process

AUDIENCE = "mcp-load"


def spec(tools: int) -> dict[str, Any]:
    """`tools` GET operations, `/things{i}/{itemId}`, each with a path and a query parameter."""
    response = {
        "200": {
            "description": "the thing",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
                }
            },
        }
    }
    parameters = [
        {"name": "itemId", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "detail", "in": "query", "schema": {"type": "boolean"}},
    ]
    paths = {
        f"/things{i}/{{itemId}}": {
            "get": {
                "operationId": f"getThing{i}",
                "summary": f"Get thing {i}",
                "parameters": parameters,
                "responses": response,
            }
        }
        for i in range(tools)
    }
    return {"openapi": "3.0.3", "info": {"title": "load", "version": "1"}, "paths": paths}


# --- the gateway process: memory, sockets, tasks ------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _socket_table() -> dict[str, tuple[int, int, str]]:
    """inode -> (local port, remote port, state) for every TCP socket in this network namespace."""
    table = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(name).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                table[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), state)
    return table


@dataclass
class Sockets:
    clients: int = 0  # connections accepted on the gateway's port
    upstream: int = 0  # connections to the upstream API
    listening: int = 0
    other: int = 0
    fds: int = 0
    targets: set[str] = field(default_factory=set)  # what the fds point to, to name a leftover one

    def __str__(self) -> str:
        return (
            f"{self.fds} fds: {self.clients} client connections, {self.upstream} upstream connections,"
            f" {self.listening} listening, {self.other} other sockets"
        )


def sockets(pid: int, gateway_port: int, upstream_port: int) -> Sockets:
    table = _socket_table()
    result = Sockets()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        result.fds += 1
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            result.targets.add(target)
            if not target.startswith("socket:["):
                continue
            entry = table.get(target[8:-1])
            if entry is None:
                result.other += 1
            elif entry[2] == "0A":  # LISTEN
                result.listening += 1
            elif entry[0] == gateway_port:
                result.clients += 1
            elif entry[1] == upstream_port:
                result.upstream += 1
            else:
                result.other += 1
    return result


async def event_loop_tasks(base_url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(base_url + "/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("mcp_anything_event_loop_tasks "):
                return int(float(line.split()[1]))
    raise RuntimeError("no mcp_anything_event_loop_tasks in /metrics")


# --- clients -------------------------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors.append(message)


class LoadClient:
    """One MCP client: a session (2025-11-25) or none (2026-07-28), its own credentials, its own tools."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, modern: bool, auth: dict[str, str], granted: set[str] | None
    ) -> None:
        self.http = http
        self.url = url
        self.modern = modern
        self.headers = {"Accept": ACCEPT, **auth}
        self.granted = granted  # the tools this client's capabilities allow; None: every tool
        self.tools: list[str] = []
        self.next_id = 0

    async def open(self) -> None:
        if not self.modern:
            init = {
                "protocolVersion": HANDSHAKE,
                "capabilities": {},
                "clientInfo": {"name": "load", "version": "1"},
            }
            async with self.http.post(self.url, json=self._message("initialize", init), headers=self.headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"initialize: HTTP {r.status}: {(await r.text())[:300]}")
                self.headers["Mcp-Session-Id"] = r.headers["mcp-session-id"]
                await r.read()
            self.headers["MCP-Protocol-Version"] = HANDSHAKE
            notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            async with self.http.post(self.url, json=notification, headers=self.headers) as r:
                await r.read()
        self.tools = await self.list_tools()
        if not self.tools:
            raise RuntimeError("tools/list is empty for this client")

    async def list_tools(self) -> list[str]:
        """tools/list, checked against what this client was granted: another caller's tools are an error."""
        names = [tool["name"] for tool in (await self.request("tools/list", {}))["tools"]]
        if self.granted is not None and set(names) != self.granted:
            raise RuntimeError(
                f"tools/list: expected the {len(self.granted)} granted tools, got {sorted(names)[:5]}..."
            )
        return names

    async def close(self) -> None:
        if not self.modern:
            async with self.http.delete(self.url, headers=self.headers) as r:
                await r.read()

    def _message(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        if self.modern:
            meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
            params = {**params, "_meta": meta}
        return {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        headers = self.headers
        if self.modern:
            headers = {**headers, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
            if method == "tools/call":
                headers["Mcp-Name"] = params["name"]
        async with self.http.post(self.url, json=self._message(method, params), headers=headers) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{method}: HTTP {response.status}: {body[:300]!r}")
        answer = json.loads(body)
        if "error" in answer:
            raise RuntimeError(f"{method}: JSON-RPC error {answer['error']}")
        result: dict[str, Any] = answer["result"]
        if result.get("isError"):
            raise RuntimeError(f"{method}: isError result {str(result.get('content'))[:300]}")
        return result

    async def run(self, deadline: float, list_share: float, results: Results, rng: random.Random) -> None:
        async def one(_: int) -> str | None:
            """A random request: its method, or None when it failed (counted; the client goes on)."""
            if rng.random() < list_share:
                method, params = "tools/list", None
            else:
                arguments = {"itemId": rng.randrange(1000), "detail": True}
                method, params = "tools/call", {"name": rng.choice(self.tools), "arguments": arguments}
            try:
                await (self.list_tools() if params is None else self.request(method, params))
            except Exception as exc:
                results.error(str(exc))
                return None
            return method

        async for method, seconds in calls_until(deadline, one):
            if method is not None:
                results.latencies[method].append(seconds)


# --- authentication ------------------------------------------------------------------------------


class NoAuth:
    group: dict[str, Any] = {}

    def credentials(self, client: int) -> tuple[dict[str, str], set[str] | None]:
        return {}, None


class JwtAuth:
    """Each client a different subject, with a real token from the test IdP; the gateway checks it with JWKS.

    With capabilities, each client also carries its own signed `x-mcp-authorized` wristband granting a
    random half of the tools, as Kuadrant's MCP Gateway sends it; the gateway filters by it.
    """

    def __init__(self, stack: contextlib.ExitStack, tmp: Path, tools: int, capabilities: bool) -> None:
        from tests.support.idp import IdP

        self.idp = stack.enter_context(IdP())
        self.tools = tools
        self.capabilities = capabilities
        self.rng = random.Random(11)
        self.group: dict[str, Any] = {
            "inbound_auth": {
                "strategy": "jwt",
                "jwt": {"issuer": self.idp.issuer, "jwks_url": self.idp.jwks_url, "audience": AUDIENCE},
            }
        }
        if capabilities:
            from tests.support.wristband import ISSUER, PUBLIC_PEM

            Path(tmp, "wristband.pem").write_text(PUBLIC_PEM)
            capability = {"source": "header", "public_key": "wristband.pem", "issuer": ISSUER}
            self.group["authorization"] = {"capabilities": capability}

    def credentials(self, client: int) -> tuple[dict[str, str], set[str] | None]:
        subject = f"user-{client}"
        token = self.idp.token(sub=subject, aud=AUDIENCE, exp=int(time.time()) + 3600)
        headers = {"Authorization": f"Bearer {token}"}
        if not self.capabilities:
            return headers, None
        from tests.support.wristband import mint

        granted = {f"get_thing{i}" for i in self.rng.sample(range(self.tools), self.tools // 2)}
        headers["x-mcp-authorized"] = mint({"tools": {"things": sorted(granted)}}, lifetime=3600, sub=subject)
        return headers, granted


# --- the run ---------------------------------------------------------------------------------------


async def run_load(
    args: argparse.Namespace, url: str, base_url: str, pid: int, ports: tuple[int, int], auth: Any
) -> int:
    gateway_port, upstream_port = ports
    before_sockets = sockets(pid, gateway_port, upstream_port)
    before_tasks = await event_loop_tasks(base_url)
    results = Results()
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        clients = [LoadClient(http, url, i % 2 == 1, *auth.credentials(i)) for i in range(args.clients)]
        await asyncio.gather(*(c.open() for c in clients))
        started = time.perf_counter()
        deadline = started + args.seconds
        memory: list[tuple[float, int]] = []

        async def sample_memory() -> None:
            while time.perf_counter() < deadline:
                memory.append((time.perf_counter() - started, rss_bytes(pid)))
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample_memory())
        await asyncio.gather(*(c.run(deadline, args.list_share, results, random.Random(rng.random())) for c in clients))
        elapsed = time.perf_counter() - started
        await sampler
        during = sockets(pid, gateway_port, upstream_port)
        await asyncio.gather(*(c.close() for c in clients))
    await asyncio.sleep(args.settle)
    after_sockets = sockets(pid, gateway_port, upstream_port)
    after_tasks = await event_loop_tasks(base_url)

    total = sum(len(v) for v in results.latencies.values())
    print(
        f"clients={args.clients} seconds={args.seconds:g} auth={args.auth} audit={args.audit} tools={args.tools}"
        f" list-share={args.list_share:g}; machine: {os.cpu_count()} cores, python {sys.version.split()[0]}"
    )
    print(f"requests ok: {total} ({total / elapsed:.0f}/s), errors: {len(results.errors)}")
    for message in sorted(set(results.errors))[:5]:
        print(f"  error: {message}")
    for method, values in sorted(results.latencies.items()):
        print(
            f"  {method:<11} n={len(values):>7}  p50 {percentile(values, 0.5) * 1000:7.2f} ms"
            f"  p99 {percentile(values, 0.99) * 1000:7.2f} ms  max {max(values) * 1000:7.2f} ms"
        )
    warm = next((rss for t, rss in memory if t >= args.warmup), memory[-1][1])
    end = memory[-1][1]
    peak = max(rss for _, rss in memory)
    growth = (end - warm) / warm * 100
    print(
        f"gateway RSS: {warm / 2**10:.0f} KiB after {args.warmup:g} s warm-up, {end / 2**10:.0f} KiB at the end"
        f" ({growth:+.2f} %), peak {peak / 2**10:.0f} KiB, {memory[0][1] / 2**10:.0f} KiB when the load started"
    )
    print(f"gateway sockets before: {before_sockets}")
    print(f"gateway sockets under load: {during}")
    print(f"gateway sockets {args.settle:g} s after the clients closed: {after_sockets}")
    new_files = sorted(t for t in after_sockets.targets - before_sockets.targets if not t.startswith("socket:["))
    if new_files:
        print(f"gateway files opened during the load and still open: {new_files}")
    print(f"gateway asyncio tasks: {before_tasks} before, {after_tasks} after")
    leaked = (
        after_sockets.clients
        + max(0, after_sockets.other - before_sockets.other)
        + max(0, after_sockets.fds - before_sockets.fds - after_sockets.upstream)
    )
    leaked_tasks = after_tasks - before_tasks
    print(f"leaked: {leaked} sockets/fds, {leaked_tasks} tasks")
    return 0 if not results.errors and leaked == 0 and leaked_tasks <= 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="RSS growth is measured from this point")
    parser.add_argument("--settle", type=float, default=32.0, help="wait after the load before counting sockets")
    parser.add_argument("--tools", type=int, default=20)
    parser.add_argument("--list-share", type=float, default=0.2, help="share of requests that are tools/list")
    parser.add_argument(
        "--auth",
        choices=["none", "jwt", "jwt+capabilities"],
        default="jwt+capabilities",
        help="jwt: a token per client; +capabilities: and a signed capability header granting half the tools",
    )
    parser.add_argument("--audit", choices=["file", "off"], default="file", help="the gateway's audit log")
    args = parser.parse_args()

    python = sys.executable
    upstream_port, gateway_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    base_url = f"http://127.0.0.1:{gateway_port}"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        auth = NoAuth() if args.auth == "none" else JwtAuth(stack, Path(tmp), args.tools, args.auth != "jwt")
        Path(tmp, "spec.json").write_text(json.dumps(spec(args.tools)))
        audit = "off" if args.audit == "off" else str(Path(tmp, "audit.log"))
        config = {
            "server": {"host": "127.0.0.1", "port": gateway_port, "audit_log": audit},
            # Every caller lists its granted tools, whatever their number: no search mode.
            "groups": [
                {
                    "name": "load",
                    "endpoint": "/mcp",
                    "upstreams": ["things"],
                    "inbound_auth": {"strategy": "none"},
                    "discovery": {"mode": "all"},
                    **auth.group,
                }
            ],
            "upstreams": [
                {"name": "things", "tool_prefix": "", "base_url": upstream_url, "openapi": {"source": "spec.json"}}
            ],
        }
        Path(tmp, "config.json").write_text(json.dumps(config))
        Path(tmp, "jwks.json").write_text('{"keys": []}')  # the bench upstream also serves a JWKS; unused here
        stack.enter_context(server_process(upstream_argv(upstream_port, Path(tmp, "jwks.json")), upstream_url))
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
        gateway = stack.enter_context(server_process(serve, base_url))
        return asyncio.run(
            run_load(args, base_url + "/mcp", base_url, gateway.pid, (gateway_port, upstream_port), auth)
        )


if __name__ == "__main__":
    sys.exit(main())
