"""Replicas for real: HAProxy (round robin, health-checked) in front of three `mcp-anything serve` processes
sharing a session key and a real Redis, and one `serve --workers 2`.

The official client's session is served by every replica; ending it on one ends it on all; forged ids are
refused; a replica killed mid-run costs only the calls it had in flight; a per-subject limit holds across the
replicas; the stateless protocol works through the balancer. Two workers serve one session, both reload on
SIGHUP, a killed one is replaced, and SIGTERM lets calls in flight finish.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.cli import run_cli_process, write_config
from tests.support.debian import debian_program
from tests.support.gateway import echo_config
from tests.support.mcp import ACCEPT, INITIALIZE, LIST, NOT_FOUND, mcp_client
from tests.support.metrics import scrape
from tests.support.redis import redis_server
from tests.support.servers import free_port, stop_process

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.redis]

KEY = "a-session-key-of-at-least-32-bytes!"
ALICE = {"X-API-Key": "key-alice"}
BOB = {"X-API-Key": "key-bob"}


def cluster_config(upstream_url: str, redis_url: str) -> dict[str, Any]:
    raw = echo_config(upstream_url)
    keys = {"strategy": "api_key", "api_key": {"values": {"alice": "key-alice", "bob": "key-bob"}}}
    raw["groups"][0]["inbound_auth"] = keys
    raw["groups"].append(
        {
            "name": "limited",
            "endpoint": "/limited",
            "upstreams": ["echo"],
            "inbound_auth": keys,
            "rate_limits": [{"per": "subject", "limit": "10/minute"}],
        }
    )
    raw["server"] = {
        "host": "127.0.0.1",
        "sessions": {"key": KEY, "revocations": redis_url},
        "rate_limit_storage": redis_url,
        "reload_interval": "off",
    }
    return raw


@contextmanager
def gateways(
    config: Path, ports: list[int], *extra: str, stderr: Any = subprocess.DEVNULL, env: dict[str, str] | None = None
) -> Iterator[list[Any]]:
    """`mcp-anything serve` on each port, started together; yields the processes once each answers /healthz."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "mcp_anything", "serve", "--config", str(config), "--port", str(port), *extra],
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 40
        for process, port in zip(processes, ports, strict=True):
            while not _answers(f"http://127.0.0.1:{port}/healthz"):
                assert process.poll() is None, f"the gateway on {port} exited with {process.returncode}"
                assert time.monotonic() < deadline, f"the gateway on {port} did not start"
                time.sleep(0.1)
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                stop_process(process)


def _answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=1).status_code == 200
    except httpx2.TransportError:
        return False


HAPROXY_CONFIG = """
global
    maxconn 512
    stats socket {stats} mode 600 level user
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch 1
frontend mcp
    bind 127.0.0.1:{port}
    default_backend gateways
backend gateways
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server check inter 200ms fall 1 rise 1
{servers}
"""


@contextmanager
def haproxy(backends: list[int]) -> Iterator[tuple[str, Path]]:
    """HAProxy in front of `backends`: its URL, and its stats socket (to read what its health checks decided)."""
    port = free_port()
    servers = "\n".join(f"    server replica-{i} 127.0.0.1:{p}" for i, p in enumerate(backends))
    with tempfile.TemporaryDirectory() as workdir:
        config, stats = Path(workdir) / "haproxy.cfg", Path(workdir) / "stats.sock"
        config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers, stats=stats))
        process = subprocess.Popen(
            [debian_program("haproxy"), "-db", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while not _answers(url + "/healthz"):
                assert process.poll() is None and time.monotonic() < deadline, "haproxy did not start"
                time.sleep(0.05)
            yield url, stats
        finally:
            stop_process(process)


def server_states(stats: Path) -> dict[str, str]:
    """{server name: UP or DOWN ...} from HAProxy's own `show stat`."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(stats))
        connection.sendall(b"show stat\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    header, *rows = answer.decode().lstrip("# ").splitlines()
    columns = header.split(",")
    records = [dict(zip(columns, row.split(","), strict=False)) for row in rows if row]
    return {
        r["svname"]: r["status"] for r in records if r["pxname"] == "gateways" and r["svname"].startswith("replica")
    }


@dataclass
class Cluster:
    balancer: str
    stats: Path  # HAProxy's stats socket
    replicas: list[str]
    processes: list[subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def cluster(upstream_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    upstream_url = upstream_server[1]
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server())
        config = write_config(tmp_path_factory.mktemp("replicas"), cluster_config(upstream_url, redis_url))
        ports = [free_port() for _ in range(3)]
        processes = stack.enter_context(gateways(config, ports))
        balancer, stats = stack.enter_context(haproxy(ports))
        yield Cluster(balancer, stats, [f"http://127.0.0.1:{p}" for p in ports], processes)


async def calls_per_replica(cluster: Cluster, group: str, tool: str, outcome: str) -> list[float]:
    return [
        (await scrape(url)).value("mcp_anything_tool_calls_total", group=group, tool=tool, outcome=outcome)
        for url in cluster.replicas
    ]


async def test_one_official_client_session_is_served_by_all_three_replicas(cluster: Cluster) -> None:
    before = await calls_per_replica(cluster, "default", "echo_get_item", "ok")
    async with mcp_client(cluster.balancer + "/mcp", headers=ALICE) as client:
        assert client.protocol_version == "2025-11-25"
        results = [await client.call_tool("echo_get_item", {"itemId": str(i)}) for i in range(30)]
    after = await calls_per_replica(cluster, "default", "echo_get_item", "ok")
    assert [r.is_error for r in results] == [False] * 30
    served = [b - a for a, b in zip(before, after, strict=True)]
    assert sum(served) == 30 and all(n > 0 for n in served), f"calls per replica: {served}"


async def test_delete_on_one_replica_ends_the_session_on_all(cluster: Cluster) -> None:
    async with httpx2.AsyncClient(timeout=10, headers={**ACCEPT, **ALICE}) as http:
        opened = await http.post(cluster.balancer + "/mcp", json=INITIALIZE)
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        served = [await http.post(url + "/mcp", json=LIST, headers=session) for url in cluster.replicas]
        assert [r.status_code for r in served] == [200] * 3
        assert (await http.delete(cluster.replicas[1] + "/mcp", headers=session)).status_code == 200
        after = [await http.post(url + "/mcp", json=LIST, headers=session) for url in cluster.replicas]
    assert [(r.status_code, r.json()) for r in after] == [(404, NOT_FOUND)] * 3


async def test_a_forged_or_altered_session_id_is_refused_through_the_balancer(cluster: Cluster) -> None:
    async with httpx2.AsyncClient(timeout=10, headers={**ACCEPT, **ALICE}) as http:
        session = (await http.post(cluster.balancer + "/mcp", json=INITIALIZE)).headers["mcp-session-id"]
        altered = session[:40] + ("A" if session[40] != "A" else "B") + session[41:]
        answers = {
            name: await http.post(cluster.balancer + "/mcp", json=LIST, headers={"Mcp-Session-Id": value})
            for name, value in {"forged": "0" * 43, "altered": altered, "truncated": session[:-2]}.items()
        }
        genuine = await http.post(cluster.balancer + "/mcp", json=LIST, headers={"Mcp-Session-Id": session})
    assert {name: (r.status_code, r.json()) for name, r in answers.items()} == dict.fromkeys(answers, (404, NOT_FOUND))
    assert genuine.status_code == 200


async def test_a_per_subject_limit_holds_across_the_replicas(cluster: Cluster) -> None:
    before = await calls_per_replica(cluster, "limited", "echo_get_item", "ok")
    async with mcp_client(cluster.balancer + "/limited", headers=BOB) as client:
        results = [await client.call_tool("echo_get_item", {"itemId": str(i)}) for i in range(13)]
    after = await calls_per_replica(cluster, "limited", "echo_get_item", "ok")
    assert [r.is_error for r in results] == [False] * 10 + [True] * 3
    assert all("Rate limit exceeded" in r.content[0].text for r in results[10:])  # type: ignore[union-attr]
    served = [b - a for a, b in zip(before, after, strict=True)]
    assert sum(served) == 10 and all(n > 0 for n in served), f"admitted calls per replica: {served}"


async def test_the_stateless_protocol_works_through_the_balancer(cluster: Cluster) -> None:
    async with mcp_client(cluster.balancer + "/mcp", mode="auto", headers=ALICE) as client:
        assert client.protocol_version == "2026-07-28"
        tools = {t.name for t in (await client.list_tools()).tools}
        results = [await client.call_tool("echo_get_item", {"itemId": str(i)}) for i in range(6)]
    assert "echo_get_item" in tools
    assert [r.is_error for r in results] == [False] * 6


async def test_a_killed_replica_costs_only_its_calls_in_flight(cluster: Cluster) -> None:
    """Runs last: it kills a replica of the module's cluster."""
    concurrency, call_seconds = 4, 0.2
    outcomes: list[tuple[float, float, bool]] = []  # (when the call started, when it ended, whether it succeeded)
    stop = asyncio.Event()

    async def caller(http: httpx2.AsyncClient, session: dict[str, str], n: int) -> None:
        while not stop.is_set():
            started = time.monotonic()
            call = {
                "jsonrpc": "2.0",
                "id": n,
                "method": "tools/call",
                "params": {"name": "echo_get_slow", "arguments": {"seconds": call_seconds}},
            }
            try:
                response = await http.post(cluster.balancer + "/mcp", json=call, headers=session)
                ok = response.status_code == 200 and "error" not in response.json()
            except httpx2.TransportError:
                ok = False
            outcomes.append((started, time.monotonic(), ok))

    async with httpx2.AsyncClient(timeout=10, headers={**ACCEPT, **ALICE}) as http:
        opened = await http.post(cluster.balancer + "/mcp", json=INITIALIZE)
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        tasks = [asyncio.create_task(caller(http, session, n)) for n in range(concurrency)]
        await asyncio.sleep(1.0)
        assert server_states(cluster.stats) == dict.fromkeys(("replica-0", "replica-1", "replica-2"), "UP")
        cluster.processes[2].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        while not server_states(cluster.stats)["replica-2"].startswith("DOWN"):
            assert time.monotonic() < killed_at + 10, "the health check takes the dead replica out"
            await asyncio.sleep(0.02)
        taken_out = time.monotonic()
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*tasks)
        still = await http.post(cluster.balancer + "/mcp", json=LIST, headers=session)
    failed = [started for started, _, ok in outcomes if not ok]
    # What fails is what was sent to the dead replica before its check failed: calls in flight at the kill,
    # and any that reached it in the moment before HAProxy noticed.
    assert all(started < taken_out for started in failed), "after the health check, every call succeeds"
    after = [ok for started, _, ok in outcomes if started > taken_out]
    assert len(after) >= concurrency * 4 and all(after), "the session goes on on the other replicas"
    before = [ok for _, ended, ok in outcomes if ended < killed_at]
    assert len(before) >= concurrency and all(before)
    assert still.status_code == 200


async def test_two_workers_serve_one_session(upstream_url: str, tmp_path: Path) -> None:
    config = workers_config(upstream_url, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr, gateways(config, [port], "--workers", "2", stderr=stderr) as (supervisor,):
        # A new connection per request: the kernel hands each to whichever worker accepts it first.
        no_reuse = httpx2.Limits(max_keepalive_connections=0)
        async with (
            httpx2.AsyncClient(timeout=10, limits=no_reuse) as http,
            Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
        ):
            for i in range(60):
                assert not (await client.call_tool("echo_get_item", {"itemId": str(i)})).is_error
                if i >= 10 and len(pids_of(log, "call allow")) == 2:
                    break
        supervisor.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while len(pids_of(log, "config reloaded")) < 2:
            assert time.monotonic() < deadline, "SIGHUP reloads every worker"
            await asyncio.sleep(0.1)
        (started,) = [line for line in lines(log) if line["message"] == "serving with 2 workers"]
        victim = started["workers"][0]
        await kill_and_replace(supervisor.pid, victim, deadline)
        async with httpx2.AsyncClient(timeout=10, limits=no_reuse, headers=ACCEPT) as http:
            session = {"Mcp-Session-Id": (await http.post(url, json=INITIALIZE)).headers["mcp-session-id"]}
            slow = {"name": "echo_get_slow", "arguments": {"seconds": 1}}
            calls = [
                asyncio.create_task(
                    http.post(
                        url, headers=session, json={"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": slow}
                    )
                )
                for i in range(4)
            ]
            await asyncio.sleep(0.4)
            supervisor.send_signal(signal.SIGTERM)  # the calls are in flight: every worker drains its own
            answers = await asyncio.gather(*calls)
        assert [(a.status_code, "error" in a.json(), a.json()["result"]["isError"]) for a in answers] == [
            (200, False, False)
        ] * 4
        assert supervisor.wait(timeout=20) == 0
    assert pids_of(log, "call allow") >= set(started["workers"]), "both workers served calls of the one session"
    assert pids_of(log, "config reloaded") == set(started["workers"])


async def test_every_workers_metrics_count_all_the_calls(upstream_url: str, tmp_path: Path) -> None:
    config = workers_config(upstream_url, tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log, temp = tmp_path / "serve.log", tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    with log.open("wb") as stderr, gateways(config, [port], "--workers", "2", stderr=stderr, env=env) as (supervisor,):
        (metrics_dir,) = temp.iterdir()
        assert metrics_dir.name.startswith("mcp-anything-metrics-") and metrics_dir.stat().st_mode & 0o777 == 0o700
        no_reuse = httpx2.Limits(max_keepalive_connections=0)
        calls = 0
        async with (
            httpx2.AsyncClient(timeout=10, limits=no_reuse) as http,
            Client(streamable_http_client(base + "/mcp", http_client=http), mode="legacy") as client,
        ):
            while calls < 20 or len(pids_of(log, "call allow")) < 2:
                assert calls < 200, "the kernel hands calls to both workers"
                assert not (await client.call_tool("echo_get_item", {"itemId": str(calls)})).is_error
                calls += 1
        ok = {"tool": "echo_get_item", "outcome": "ok"}
        # Each scrape is a new connection, answered by either worker: every one counts the calls of both.
        for _ in range(8):
            assert (await scrape(base)).value("mcp_anything_tool_calls_total", **ok) == calls
        (started,) = [line for line in lines(log) if line["message"] == "serving with 2 workers"]
        memory = {
            int(s.labels["pid"]) for s in (await scrape(base)).samples if s.name == "process_resident_memory_bytes"
        }
        assert memory == {supervisor.pid, *started["workers"]}, "every process of the replica, by pid"
        victim = started["workers"][0]
        await kill_and_replace(supervisor.pid, victim, time.monotonic() + 20)
        assert list(metrics_dir.glob(f"counter_{victim}.db")), "a dead worker's calls still count"
        assert not list(metrics_dir.glob(f"gauge_live*_{victim}.db")), "its sessions, streams and circuits do not"
        for _ in range(4):
            assert (await scrape(base)).value("mcp_anything_tool_calls_total", **ok) == calls
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0
    assert list(temp.iterdir()) == [], "the metrics directory is removed at exit"


def workers_config(upstream_url: str, tmp_path: Path) -> Path:
    raw = echo_config(upstream_url)
    raw["server"] = {"host": "127.0.0.1", "sessions": {"key": KEY}, "reload_interval": "off"}
    return write_config(tmp_path, raw)


async def kill_and_replace(supervisor: int, victim: int, deadline: float) -> None:
    os.kill(victim, signal.SIGKILL)
    while len(children := workers_of(supervisor)) != 2 or victim in children:
        assert time.monotonic() < deadline, "a worker that dies is replaced"
        await asyncio.sleep(0.1)


def workers_of(supervisor: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()}


def lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def pids_of(log: Path, message: str) -> set[int]:
    return {line["pid"] for line in lines(log) if line["message"] == message}


def test_more_than_one_worker_needs_a_session_key(upstream_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, echo_config(upstream_url))
    result = run_cli_process("serve", "--config", str(config), "--port", str(free_port()), "--workers", "2")
    assert result.returncode == 2
    assert "config error: server.sessions.key: required with --workers 2" in result.stderr


def test_workers_that_cannot_load_the_config_stop_the_supervisor(upstream_url: str, tmp_path: Path) -> None:
    raw = echo_config(upstream_url)
    raw["server"] = {"host": "127.0.0.1", "sessions": {"key": KEY}}
    config = write_config(tmp_path, raw)
    (tmp_path / "echo.yaml").unlink()  # found missing by each worker as it builds its app
    result = run_cli_process("serve", "--config", str(config), "--port", str(free_port()), "--workers", "2")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "config error: " in result.stderr and "echo.yaml" in result.stderr
