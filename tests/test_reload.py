"""Config reload end to end: a real gateway serving a config file, edits to that file (or SIGHUP to a real
`mcp-anything serve` process), the official MCP client with an open event stream."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml
from mcp import types
from mcp.shared.exceptions import MCPError

from mcp_anything.app import GatewayApp, create_app
from mcp_anything.config import ConfigSource
from tests.support.gateway import echo_config
from tests.support.mcp import ACCEPT, INITIALIZE, mcp_client
from tests.support.metrics import scrape
from tests.support.openapi import SPECS
from tests.support.servers import ServerThread, free_port
from tests.support.upstream import RecordingUpstream

pytestmark = pytest.mark.anyio

PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


class ConfigFile:
    """A config file in a temporary directory, next to a copy of the echo spec, that a test rewrites."""

    def __init__(self, directory: Path, raw: dict[str, Any]) -> None:
        shutil.copy(SPECS / "echo.yaml", directory / "echo.yaml")
        self.path = directory / "config.yaml"
        self.write(raw)

    def write(self, raw: dict[str, Any] | str) -> None:
        previous = self.path.stat().st_mtime_ns if self.path.exists() else 0
        self.path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
        # A visibly new mtime even where timestamps are coarse and the size happens to be the same.
        stamp = max(previous + 10_000_000, self.path.stat().st_mtime_ns)
        os.utime(self.path, ns=(stamp, stamp))


def reloading(upstream_url: str, interval: str = "100ms", **upstream_overrides: Any) -> dict[str, Any]:
    raw = echo_config(upstream_url, **upstream_overrides)
    raw["server"] = {"reload_interval": interval}
    return raw


@contextmanager
def serving(config_file: ConfigFile) -> Iterator[tuple[str, GatewayApp]]:
    source = ConfigSource(config_file.path)
    app = create_app(source.load(), source=source)
    with ServerThread(app, lifespan="on") as server:
        yield server.url, app


async def eventually(condition: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    with anyio.fail_after(within):
        while not await condition():  # noqa: ASYNC110 - polling what another thread or process changes
            await anyio.sleep(0.05)


async def tool_names(endpoint: str) -> set[str]:
    async with mcp_client(endpoint, mode="auto") as client:
        return {t.name for t in (await client.list_tools()).tools}


@pytest.mark.slow
async def test_a_changed_file_reloads_and_notifies_open_sessions(tmp_path: Path, upstream_url: str) -> None:
    config = ConfigFile(tmp_path, reloading(upstream_url))
    notified = anyio.Event()
    notifications: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            notifications.append(message.method)
            notified.set()

    with serving(config) as (url, app):
        async with mcp_client(url + "/mcp", mode="legacy", message_handler=on_message) as client:
            assert "echo_get_item" in {t.name for t in (await client.list_tools()).tools}
            config.write(reloading(upstream_url, exclude=["getItem"]))
            with anyio.fail_after(10):
                await notified.wait()
            # The session survived the reload and sees the new tool list.
            after = {t.name for t in (await client.list_tools()).tools}
            assert "echo_get_item" not in after and "echo_search_items" in after
            assert (await client.call_tool("echo_get_text", {})).is_error is False
            # A reload that changes no tool and no group setting tells nobody.
            old = app.gateway
            config.write(reloading(upstream_url, exclude=["getItem"], headers={"X-Generation": "3"}))
            await eventually(lambda: _serving_other(app, old))
            await client.call_tool("echo_get_text", {})
    assert notifications == ["notifications/tools/list_changed"]


@pytest.mark.slow
async def test_a_bad_config_keeps_the_old_one_serving(
    tmp_path: Path, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = ConfigFile(tmp_path, reloading(upstream_url))
    broken = reloading(upstream_url)
    broken["upstreams"][0]["timeout"] = "soon"
    broken["groups"][0]["inbound_auht"] = {"strategy": "none"}
    with serving(config) as (url, _):
        before = await scrape(url)
        tools = await tool_names(url + "/mcp")
        config.write(broken)

        async def failed() -> bool:
            scraped = await scrape(url)
            return scraped.value("mcp_anything_config_reloads_total", outcome="error") > before.value(
                "mcp_anything_config_reloads_total", outcome="error"
            )

        await eventually(failed)
        assert await tool_names(url + "/mcp") == tools
        config.write("groups: [unclosed")
        await eventually(lambda: _logged(caplog, "not valid YAML"))
        assert await tool_names(url + "/mcp") == tools
    problems = [r.getMessage() for r in caplog.records if r.name == "mcp_anything.reload"]
    assert any("upstreams[0].timeout: expected a duration" in p for p in problems), problems
    assert any("groups[0].inbound_auht: unknown key" in p for p in problems), problems
    assert any("still serving the previous config" in p for p in problems), problems


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records)


@pytest.mark.slow
async def test_endpoints_added_and_removed_by_a_reload(tmp_path: Path, upstream_url: str) -> None:
    raw = reloading(upstream_url)
    config = ConfigFile(tmp_path, raw)
    second = {"name": "second", "endpoint": "/second/mcp", "upstreams": ["echo"], "inbound_auth": {"strategy": "none"}}
    with serving(config) as (url, app):
        async with httpx2.AsyncClient() as http:
            assert (await http.post(url + "/second/mcp", json={})).status_code == 404
        config.write({**raw, "groups": [*raw["groups"], second]})
        await eventually(lambda: _has_groups(app, 2))
        assert "echo_get_item" in await tool_names(url + "/second/mcp")
        async with httpx2.AsyncClient(base_url=url) as http:
            opened = await http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
            session = {**ACCEPT, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
            assert (await http.post("/mcp", json=PING, headers=session)).status_code == 200
            assert (await http.post("/second/mcp", json=PING, headers=session)).status_code == 404, (
                "a session is only valid on the endpoint that opened it"
            )

        async with mcp_client(url + "/second/mcp", mode="legacy") as client:
            await client.list_tools()
            config.write(raw)  # the second group goes away, and its session with it
            await eventually(lambda: _has_groups(app, 1))
            with pytest.raises(MCPError, match="Session terminated"):  # the endpoint answers 404
                await client.list_tools()
        async with httpx2.AsyncClient() as http:
            assert (await http.post(url + "/second/mcp", json={})).status_code == 404
        assert "echo_get_item" in await tool_names(url + "/mcp")


async def _has_groups(app: GatewayApp, count: int) -> bool:
    return len(app.gateway.groups) == count


@pytest.mark.slow
async def test_in_flight_calls_finish_on_the_old_config_then_its_clients_close(
    tmp_path: Path, upstream: RecordingUpstream, upstream_url: str
) -> None:
    config = ConfigFile(tmp_path, reloading(upstream_url, timeout="10s"))
    with serving(config) as (url, app):
        old = app.gateway
        async with mcp_client(url + "/mcp", mode="legacy") as client, anyio.create_task_group() as tasks:
            results: list[Any] = []

            async def slow_call() -> None:
                # Long enough for the reload to happen while it runs, even on a busy machine.
                results.append(await client.call_tool("echo_get_slow", {"seconds": 3}))

            tasks.start_soon(slow_call)
            await eventually(lambda: _received(upstream, "/slow"))
            config.write(reloading(upstream_url, timeout="10s", headers={"X-Generation": "2"}))
            await eventually(lambda: _serving_other(app, old), within=2.5)
            # The old gateway is retired but waits for the slow call before closing its upstream client.
            assert old.upstreams["echo"]._http.open
        assert results[0].is_error is False, results[0].content
        await eventually(lambda: _closed(old))
        async with mcp_client(url + "/mcp") as client:
            await client.call_tool("echo_get_item", {"itemId": "1"})
    assert upstream.last.header("x-generation") == "2"


async def _received(upstream: RecordingUpstream, path: str) -> bool:
    return any(r.path == path for r in upstream.requests)


async def _serving_other(app: GatewayApp, old: Any) -> bool:
    return app.gateway is not old


async def _closed(gateway: Any) -> bool:
    return not gateway.upstreams["echo"]._http.open  # what Upstream.aclose leaves


@pytest.mark.slow
async def test_rate_limit_counters_survive_a_reload(tmp_path: Path, upstream_url: str) -> None:
    raw = reloading(upstream_url)
    raw["groups"][0]["rate_limits"] = [{"per": "tool", "limit": "2/minute"}]
    config = ConfigFile(tmp_path, raw)
    with serving(config) as (url, app):
        old = app.gateway
        async with mcp_client(url + "/mcp") as client:
            assert not (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error
            config.write({**raw, "upstreams": [{**raw["upstreams"][0], "headers": {"X-Generation": "2"}}]})
            await eventually(lambda: _serving_other(app, old))
            assert not (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error
            assert (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error


@pytest.mark.slow
async def test_sighup_reloads_a_running_server(tmp_path: Path, upstream_url: str) -> None:
    raw = reloading(upstream_url, interval="off")
    port = free_port()
    raw["server"]["port"] = port
    config = ConfigFile(tmp_path, raw)
    log = tmp_path / "stderr.log"
    endpoint = f"http://127.0.0.1:{port}/mcp"
    with serve_process(config.path, log) as process:
        await eventually(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), within=20)
        assert "echo_get_item" in await tool_names(endpoint)
        config.write(reloading(upstream_url, interval="off", exclude=["getItem"]) | {"server": raw["server"]})
        await anyio.sleep(0.5)
        assert "echo_get_item" in await tool_names(endpoint), "polling is off: only SIGHUP reloads"
        process.send_signal(signal.SIGHUP)
        await eventually(lambda: _lacks(endpoint, "echo_get_item"))
        assert process.poll() is None
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any({"message": "config reloaded", "reason": "SIGHUP"}.items() <= line.items() for line in lines), lines


@contextmanager
def serve_process(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`mcp-anything serve --config` as its own process (signals need a main thread), stderr into `log`."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_anything", "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)


async def _answers(url: str) -> bool:
    try:
        async with httpx2.AsyncClient() as http:
            return (await http.get(url)).status_code == 200
    except httpx2.TransportError:
        return False


async def _lacks(endpoint: str, tool: str) -> bool:
    return tool not in await tool_names(endpoint)


def test_watched_files_are_the_config_and_the_local_files_it_names(tmp_path: Path) -> None:
    raw = echo_config("http://127.0.0.1:9", overlays=["overlays/a.yaml"])
    raw["upstreams"][0]["outbound_auth"] = {"strategy": "lua", "lua": {"source": "lua/token.lua"}}
    raw["upstreams"].append({"name": "remote", "openapi": {"source": "https://api.example/openapi.json"}})
    raw["groups"][0]["inbound_auth"] = {"strategy": "lua", "lua": {"source": "lua/check.lua"}}
    config = ConfigFile(tmp_path, raw)
    source = ConfigSource(config.path)
    watched = source.watched(source.load())
    names = [str(p.relative_to(tmp_path.resolve())) for p in watched]
    assert names == ["config.yaml", "echo.yaml", "overlays/a.yaml", "lua/token.lua", "lua/check.lua"]


@pytest.mark.slow
async def test_a_spec_url_that_cannot_be_fetched_fails_the_reload(
    tmp_path: Path, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = ConfigFile(tmp_path, reloading(upstream_url))
    unreachable = reloading(upstream_url)
    unreachable["upstreams"][0]["openapi"] = {"source": f"http://127.0.0.1:{free_port()}/openapi.yaml"}
    with serving(config) as (url, app):
        old = app.gateway
        config.write(unreachable)
        await eventually(lambda: _logged(caplog, "still serving the previous config"))
        assert app.gateway is old
        assert "echo_get_item" in await tool_names(url + "/mcp")
    problems = [r.getMessage() for r in caplog.records if r.name == "mcp_anything.reload"]
    assert any("upstreams[0].openapi.source" in p for p in problems), problems


@pytest.mark.slow
async def test_settings_read_at_startup_keep_their_running_values(
    tmp_path: Path, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw = reloading(upstream_url)
    config = ConfigFile(tmp_path, raw)
    with serving(config) as (url, app):
        old = app.gateway
        config.write({**raw, "server": {**raw["server"], "port": 1, "audit_log": "off"}, "groups": raw["groups"]})
        await eventually(lambda: _serving_other(app, old))
        assert app.gateway.config.server.port == old.config.server.port
        assert app.gateway.config.server.audit_log == "stderr"
        assert "echo_get_item" in await tool_names(url + "/mcp")
    warnings = [r.getMessage() for r in caplog.records if r.name == "mcp_anything.reload" and r.levelname == "WARNING"]
    assert warnings == [
        "server.port changed; the new value takes effect on restart",
        "server.audit_log changed; the new value takes effect on restart",
    ]
