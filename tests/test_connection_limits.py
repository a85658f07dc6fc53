"""Connection floods against `mcp-anything serve` (a real process on 127.0.0.1): `server.limits`.

A header flood is cut off and the gateway's memory stays bounded; half-sent requests are closed
after the head deadline and never lock out `/healthz`, even at a low descriptor limit; one client
address cannot take every connection.
"""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_anything.config import ConfigError, parse_config
from mcp_anything.server.guard import FD_RESERVE, ConnectionGuard
from tests.support.cli import serving_process
from tests.support.openapi import SPECS
from tests.support.servers import free_port

HALF_SENT = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n"  # the blank line that ends a head never comes


@contextmanager
def gateway(tmp_path: Path, open_files: int | None = None, **limits: Any) -> Iterator[tuple[int, str]]:
    """The gateway with these `server.limits`: (its pid, its URL)."""
    port = free_port()
    raw = {
        "server": {"host": "127.0.0.1", "port": port, "limits": limits},
        "groups": [{"name": "g", "endpoint": "/mcp", "upstreams": ["echo"], "inbound_auth": {"strategy": "none"}}],
        "upstreams": [
            {"name": "echo", "base_url": "http://127.0.0.1:9", "openapi": {"source": str(SPECS / "echo.yaml")}}
        ],
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    with serving_process(config, port, open_files) as (process, url):
        yield process.pid, url


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def connect(url: str, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    return sock


def answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (b"" if it closed without a word)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return received


def status_of(sock: socket.socket) -> int | None:
    received = answer(sock)
    return int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else None


def healthy(url: str, source: str = "127.0.0.1", path: str = "/healthz") -> bool:
    with connect(url, source) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
        return status_of(sock) == 200


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send, unless the gateway already closed the connection (a flood's oldest may be gone by now)."""
    with suppress(OSError):
        sock.sendall(data)


def flood_limit() -> int:
    """Half-sent connections for a flood: well within this process's descriptor limit."""
    return min(400, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4)


@pytest.mark.parametrize("line", [b"X-Fill: " + b"a" * 1000 + b"\r\n", b"a" * 1024], ids=["header lines", "one line"])
def test_a_header_flood_is_cut_off_and_memory_stays_bounded(tmp_path: Path, line: bytes) -> None:
    with gateway(tmp_path) as (pid, url), connect(url) as sock:
        before = resident_mib(pid)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        chunk, sent = line * 64, 0
        with pytest.raises(OSError):  # reset or broken pipe once the gateway has answered and closed
            while sent < 32 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        assert sent < 4 * 1024 * 1024, "the flood was not cut off"
        grown = resident_mib(pid) - before
        assert healthy(url)
    assert grown < 16, f"the gateway grew {grown:.0f} MiB"


def test_a_head_just_under_the_limit_is_served(tmp_path: Path) -> None:
    headers = b"".join(b"X-Fill-%d: %s\r\n" % (i, b"a" * 1000) for i in range(30))  # ~31 KiB of 32 KiB
    with gateway(tmp_path, max_header_bytes="32KiB") as (_, url), connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers + b"\r\n")
        assert status_of(sock) == 200


def test_half_sent_requests_are_closed_at_the_head_deadline_while_healthz_answers(tmp_path: Path) -> None:
    count = flood_limit()
    limits = {"header_timeout": "1s", "max_connections_per_client": 1000}
    with gateway(tmp_path, **limits) as (_, url), ExitStack() as stack:
        started = time.monotonic()
        flood = [stack.enter_context(connect(url)) for _ in range(count)]
        for sock in flood:
            send_quietly(sock, HALF_SENT)
        assert healthy(url) and healthy(url, path="/readyz")
        statuses = set()
        for sock in flood:  # all within 5 s of the first connection, however many are left open
            sock.settimeout(max(0.01, started + 5 - time.monotonic()))
            statuses.add(status_of(sock))
        assert healthy(url)
    assert statuses == {408}


def test_healthz_answers_through_a_flood_larger_than_the_descriptor_limit(tmp_path: Path) -> None:
    """The issue's container: 1,024 descriptors and more half-sent requests than that; here scaled to 256."""
    count = min(flood_limit(), 300)
    with gateway(tmp_path, open_files=256, max_connections_per_client=1000) as (_, url), ExitStack() as stack:
        flood = [stack.enter_context(connect(url)) for _ in range(count)]
        for sock in flood:
            send_quietly(sock, HALF_SENT)
        for _ in range(5):
            assert healthy(url)
        statuses = [status_of(sock) for sock in flood[: count - (256 - FD_RESERVE)]]
    # At the cap (256 less the reserve) the oldest half-sent requests made room for the newer ones.
    assert set(statuses) == {503}


def test_one_client_address_cannot_take_every_connection(tmp_path: Path) -> None:
    with gateway(tmp_path, max_connections=10, max_connections_per_client=3) as (_, url), ExitStack() as stack:
        # Requests with a complete head and a body still arriving: busy, never evicted.
        busy = [stack.enter_context(connect(url)) for _ in range(3)]
        for sock in busy:
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.2)
        with connect(url) as refused:
            assert status_of(refused) == 503
        assert healthy(url, source="127.0.0.2")  # another address still gets in


def test_at_a_client_cap_the_oldest_half_sent_request_makes_room(tmp_path: Path) -> None:
    with gateway(tmp_path, max_connections_per_client=3) as (_, url), ExitStack() as stack:
        waiting = [stack.enter_context(connect(url)) for _ in range(3)]
        for sock in waiting:
            sock.sendall(HALF_SENT)
            time.sleep(0.05)
        assert healthy(url)
        assert status_of(waiting[0]) == 503
        for sock in waiting[1:]:
            sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                sock.recv(1)  # still open, still waiting


def test_limits_config() -> None:
    raw = {"groups": [{"name": "g", "upstreams": [], "inbound_auth": {"strategy": "none"}}], "upstreams": []}
    limits = parse_config(raw).server.limits
    assert (limits.max_header_bytes, limits.header_timeout) == (64 * 1024, 10.0)
    assert (limits.max_connections, limits.max_connections_per_client) == (1000, 100)
    raw["server"] = {"limits": {"max_connections": 10, "max_connections_per_client": 20}}
    with pytest.raises(ConfigError, match="max_connections_per_client \\(20\\) cannot be more than max_connections"):
        parse_config(raw)
    raw["server"] = {"limits": {"header_timeout": "0s"}}
    with pytest.raises(ConfigError, match=r"server\.limits\.header_timeout"):
        parse_config(raw)


def test_max_connections_fits_the_descriptor_limit(caplog: pytest.LogCaptureFixture) -> None:
    limits = parse_config(
        {"groups": [{"name": "g", "upstreams": [], "inbound_auth": {"strategy": "none"}}], "upstreams": []}
    ).server.limits
    assert ConnectionGuard(limits, fd_limit=1024).max_connections == 1024 - FD_RESERVE
    assert "the open-file limit is 1024" in caplog.text
    assert ConnectionGuard(limits, fd_limit=65536).max_connections == 1000
