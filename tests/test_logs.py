"""Log destinations: the main log on stderr, audit lines on their own stream or file, whatever the log level."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
import yaml

from mcp_anything.logs import ConsoleFormatter
from tests.support.gateway import echo_config
from tests.support.idp import IdP
from tests.support.mcp import mcp_client
from tests.support.openapi import SPECS
from tests.support.servers import free_port

pytestmark = pytest.mark.slow  # each test runs the gateway's logging in a fresh process

EMIT = """
import logging, sys
from mcp_anything.logs import configure_logging
configure_logging(sys.argv[1], "warning", sys.argv[2])
logging.getLogger("mcp_anything.audit").info("call allow", extra={"fields": {"tool": "pets_list", "subject": "alice"}})
logging.getLogger("mcp_anything.calls").info("tool call")
logging.getLogger("mcp_anything").warning("a warning")
"""


def emit(fmt: str, audit: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", EMIT, fmt, audit], capture_output=True, text=True, check=True, cwd=cwd)


def test_audit_lines_go_to_their_own_file_even_when_the_log_level_is_higher(tmp_path: Path) -> None:
    result = emit("json", str(tmp_path / "audit.log"), tmp_path)
    (audit,) = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert {
        "logger": "mcp_anything.audit",
        "message": "call allow",
        "tool": "pets_list",
        "subject": "alice",
    }.items() <= (audit.items())
    (main,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert main["message"] == "a warning", "info lines are below the level; audit lines are not on stderr"
    assert result.stdout == ""


def test_audit_on_stdout_in_console_format(tmp_path: Path) -> None:
    result = emit("console", "stdout", tmp_path)
    assert "mcp_anything.audit: call allow tool=pets_list subject=alice" in result.stdout
    assert "call allow" not in result.stderr and "a warning" in result.stderr


def test_audit_off(tmp_path: Path) -> None:
    result = emit("json", "off", tmp_path)
    assert "call allow" not in result.stdout + result.stderr


def test_serve_refuses_an_audit_file_it_cannot_open(tmp_path: Path) -> None:
    (tmp_path / "echo.yaml").write_text((SPECS / "echo.yaml").read_text())
    raw = {**echo_config("http://127.0.0.1:9"), "server": {"audit_log": "missing-dir/audit.log"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    result = subprocess.run(
        [sys.executable, "-m", "mcp_anything", "serve", "--config", str(tmp_path / "config.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 2
    expected = f"config error: server.audit_log: cannot open {tmp_path.resolve()}/missing-dir/audit.log:"
    assert expected in result.stderr, result.stderr


@pytest.mark.anyio
async def test_a_served_gateway_writes_audit_lines_to_the_audit_file_only(tmp_path: Path, upstream_url: str) -> None:
    (tmp_path / "echo.yaml").write_text((SPECS / "echo.yaml").read_text())
    port = free_port()
    raw = {**echo_config(upstream_url), "server": {"port": port, "audit_log": "audit.log"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    stderr = tmp_path / "stderr.log"
    with serve(tmp_path / "config.yaml", stderr):
        await _healthy(f"http://127.0.0.1:{port}/healthz")
        async with mcp_client(f"http://127.0.0.1:{port}/mcp") as client:
            await client.list_tools()
            await client.call_tool("echo_get_item", {"itemId": "1"})
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(a["action"], a["decision"]) for a in audit] == [("list", "allow"), ("call", "allow")]
    assert audit[1]["tool"] == "echo_get_item" and audit[1]["logger"] == "mcp_anything.audit"
    logged = [json.loads(line) for line in stderr.read_text().splitlines()]
    assert "mcp_anything.audit" not in {line["logger"] for line in logged}
    assert any(line["logger"] == "mcp_anything.calls" and line["tool"] == "echo_get_item" for line in logged)


CONSOLE_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ +(\S+): (.*)")
FORGED_SUB = (
    "bob\n2026-01-01 00:00:00,000 INFO    mcp_anything.audit: call allow group=default subject=admin"
    "\r\x1b[2K\x1b[1A\u2028forged\x85line"
)


@pytest.mark.node
@pytest.mark.anyio
async def test_a_forged_subject_writes_one_escaped_console_line(tmp_path: Path, upstream_url: str, idp: IdP) -> None:
    (tmp_path / "echo.yaml").write_text((SPECS / "echo.yaml").read_text())
    port = free_port()
    raw = {**echo_config(upstream_url), "server": {"port": port}}
    raw["groups"][0]["inbound_auth"] = {"strategy": "jwt", "jwt": {"issuer": idp.issuer}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    stderr = tmp_path / "stderr.log"
    token = idp.token(sub=FORGED_SUB + "x" * 2000)
    with serve(tmp_path / "config.yaml", stderr, "console"):
        await _healthy(f"http://127.0.0.1:{port}/healthz")
        async with mcp_client(f"http://127.0.0.1:{port}/mcp", headers={"Authorization": f"Bearer {token}"}) as client:
            await client.call_tool("echo_get_item", {"itemId": "1"})
    text = stderr.read_bytes().decode()
    records = [CONSOLE_RECORD.match(line) for line in text.splitlines()]
    assert all(records), "every line is a record of its own: " + text
    audit = [m.group(2) for m in records if m and m.group(1) == "mcp_anything.audit"]
    (call,) = [line for line in audit if line.startswith("call allow group=default ")]
    assert len(audit) == 2, audit  # the call, and the client's tools/list
    assert ' subject="bob\\n2026-01-01 00:00:00,000 INFO    mcp_anything.audit: call allow' in call
    assert "\\r\\x1b[2K\\x1b[1A\\u2028forged\\x85line" in call
    assert "x" * (512 - len(FORGED_SUB)) + f'...[{len(FORGED_SUB) + 2000 - 512} more chars]" strategy=jwt' in call
    assert not any(c in text for c in "\r\x1b\u2028\x85")


def test_a_traceback_quoting_caller_text_cannot_start_a_record_line() -> None:
    try:
        raise ValueError("bad id\n2026-01-01 00:00:00,000 INFO    mcp_anything.audit: call allow\x1b[2K")
    except ValueError:
        record = logging.LogRecord("mcp_anything", logging.ERROR, __file__, 1, "tool call failed", (), sys.exc_info())
    first, *rest = ConsoleFormatter().format(record).split("\n")
    assert CONSOLE_RECORD.match(first) and first.endswith("mcp_anything: tool call failed")
    assert rest[0] == "  Traceback (most recent call last):" and rest[-1].endswith("call allow\\x1b[2K")
    assert all(line.startswith("  ") for line in rest)


@contextmanager
def serve(config: Path, stderr: Path, log_format: str = "json") -> Iterator[None]:
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_anything", "serve", "--config", str(config), "--log-format", log_format],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)


async def _healthy(url: str) -> None:
    async with httpx2.AsyncClient() as http:
        with anyio.fail_after(20):
            while True:
                try:
                    if (await http.get(url)).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                await anyio.sleep(0.1)
