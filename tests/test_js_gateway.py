"""The JavaScript strategies end to end: a real gateway running the issue's two scripts as shipped in
examples/ (and their Lua ports), the official MCP client, the recording upstream, and oauth2-mock-server
as the token endpoint get_token.js fetches from."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml

from mcp_anything.app import GatewayApp, create_app
from mcp_anything.config import ConfigSource
from mcp_anything.js import POOL_SIZE
from tests.support.cli import run_cli, write_config
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import ACCEPT, INITIALIZE, mcp_client
from tests.support.openapi import SPECS
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

EXAMPLES = Path(__file__).parent.parent / "examples"
ISSUE_TOKEN_URL = "https://auth.example.com/token"
CLIENT_SECRET = "js-client-s3cret"
ENV = {"CLIENT_ID": "gateway", "CLIENT_SECRET": CLIENT_SECRET}
CALLER = "Bearer caller-token-0123456789abcdef"


def pointed_at(idp: IdP, script: Path, directory: Path) -> Path:
    """`script` with the issue's token URL replaced by the mock's, the only change made to it."""
    source = script.read_text()
    assert source.count(ISSUE_TOKEN_URL) == 1
    copy = directory / script.name
    copy.write_text(source.replace(ISSUE_TOKEN_URL, idp.token_url))
    return copy


def allowed_host(idp: IdP) -> str:
    return httpx2.URL(idp.token_url).netloc.decode()  # 127.0.0.1:PORT


def script_config(upstream_url: str, inbound: dict[str, Any], outbound: dict[str, Any]) -> dict[str, Any]:
    raw = echo_config(upstream_url, outbound_auth=outbound)
    raw["groups"][0]["inbound_auth"] = inbound
    return raw


@pytest.fixture
def token_endpoint(idp: IdP) -> IdP:
    # The issue's token service takes JSON {client_id, client_secret} without grant_type.
    idp.configure(clients={"gateway": CLIENT_SECRET}, json_grant=True)
    return idp


@pytest.mark.node
@pytest.mark.parametrize(
    ("strategy", "inbound", "outbound"),
    [
        ("js", EXAMPLES / "validate_token.js", EXAMPLES / "get_token.js"),
        ("lua", EXAMPLES / "lua_ports" / "validate_token.lua", EXAMPLES / "lua_ports" / "get_token.lua"),
    ],
)
async def test_the_issue_scripts_through_the_gateway(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    token_endpoint: IdP,
    upstream_url: str,
    tmp_path: Path,
    strategy: str,
    inbound: Path,
    outbound: Path,
) -> None:
    raw = script_config(
        upstream_url,
        {"strategy": strategy, strategy: {"source": str(inbound)}},
        {
            "strategy": strategy,
            strategy: {
                "source": str(pointed_at(token_endpoint, outbound, tmp_path)),
                "allowed_hosts": [allowed_host(token_endpoint)],
                "env": ["CLIENT_ID", "CLIENT_SECRET"],
            },
        },
    )
    with gateway(raw, env=ENV) as url:
        async with mcp_client(url + "/mcp", headers={"Authorization": CALLER}) as client:
            for _ in range(2):
                result = await client.call_tool("echo_search_items", {"q": "fish"})
                assert result.is_error is False, result.content
        async with httpx2.AsyncClient() as http:
            short = await http.post(url + "/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": "Bearer x"})
    assert short.status_code == 401
    tokens = token_endpoint.requests("/token")
    assert len(tokens) == 2  # no lifetime returned: the script runs for every call
    assert {(t["client_id"], t["auth_method"]) for t in tokens} == {("gateway", "client_secret_post")}
    first, second = upstream.requests
    for request in (first, second):
        authorization = request.header("authorization")
        assert authorization is not None and authorization.startswith("Bearer ey")  # the mock's JWT
        assert "caller-token" not in str(request.headers)
    assert first.header("authorization") != second.header("authorization")


ATTACK_SCRIPT = """
const attack = headers["x-attack"];
if (attack !== undefined) {
%s
}
return (headers["Authorization"] ?? "").length > 20;
"""

ATTACKS = {
    "throws": ("throw new Error('no')", "runtime error"),
    "loops": ("while (true) {}", "timeout error"),
    "allocates": ("const a = []; while (true) a.push('x'.repeat(1 << 16));", "memory error"),
    "huge string": ("let s = 'x'; while (true) s += s;", "string too long"),
    "returns a string": ("return 'yes';", "result error"),
    "returns null": ("return null;", "result error"),
    "requires": ("return require('fs').readFileSync('/etc/passwd', 'utf8').length > 0;", "runtime error"),
    "reads process": ("return process.env.HOME.length > 0;", "runtime error"),
    "evals": ("return eval('1 + 1') === 2;", "runtime error"),
    "builds a Function": ("return Function('return globalThis')() !== undefined;", "runtime error"),
    "climbs to a constructor": ("return (() => {}).constructor('return 1')() === 1;", "runtime error"),
    "pollutes a prototype": ("Object.prototype.allowed = true; return {}.allowed;", "result error"),
    "keeps a global": ("globalThis.seen = true; return globalThis.seen === true;", "returned false"),
    "fetches": ("return ctx.fetch('http://127.0.0.1:1/').status === 200;", "runtime error"),
    "reads an unlisted env name": ("return ctx.env.HMAC_KEY.length > 0;", "not listed in js.env"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_denied_inbound_script_logs_why_and_the_gateway_keeps_serving(
    gateway: GatewayFactory,
    upstream_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    attack: str,
) -> None:
    code, logged = ATTACKS[attack]
    (tmp_path / "attack.js").write_text(ATTACK_SCRIPT % code)
    raw = echo_config(upstream_url)
    raw["groups"][0]["inbound_auth"] = {
        "strategy": "js",
        "js": {"source": str(tmp_path / "attack.js"), "timeout": "200ms", "memory_limit_mb": 8},
    }
    caplog.set_level(logging.INFO, logger="mcp_anything.inbound.script")
    with gateway(raw) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            for _ in range(2):  # the second time on a runtime the first one may have left behind
                denied = await http.post(
                    url + "/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": CALLER, "X-Attack": "1"}
                )
                assert denied.status_code == 401
            served = await http.post(url + "/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": CALLER})
            assert served.status_code == 200
            refused = await http.post(url + "/mcp", json=INITIALIZE, headers={**ACCEPT, "Authorization": "Bearer x"})
            assert refused.status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "mcp_anything.inbound.script"]
    assert len(lines) == 3, lines  # the two attacks, then the short token
    assert all(line.startswith("inbound JavaScript script attack.js ") and logged in line for line in lines[:2]), lines
    assert "caller-token" not in caplog.text


async def test_100_concurrent_inbound_evaluations_stay_correct_and_apart(
    gateway: GatewayFactory, upstream_url: str, tmp_path: Path
) -> None:
    # Each caller's verdict depends on its own headers only; a run leaking into another would show.
    (tmp_path / "pairs.js").write_text(
        'const user = headers["x-user"] ?? "";\n'
        'return headers["Authorization"] === `Bearer token-for-${user}-0123456789` && user.endsWith("-ok");\n'
    )
    raw = echo_config(upstream_url)
    raw["groups"][0]["inbound_auth"] = {"strategy": "js", "js": {"source": str(tmp_path / "pairs.js"), "timeout": "2s"}}
    outcomes: dict[int, int] = {}

    async def call(http: httpx2.AsyncClient, url: str, n: int) -> None:
        user = f"user{n}-ok" if n % 3 else f"user{n}-no"
        token = f"user{n + 1}-ok" if n % 7 == 0 else user  # someone else's token
        headers = {**ACCEPT, "X-User": user, "Authorization": f"Bearer token-for-{token}-0123456789"}
        outcomes[n] = (await http.post(url + "/mcp", json=INITIALIZE, headers=headers)).status_code

    with gateway(raw) as url:
        limits = httpx2.Limits(max_connections=100)
        async with httpx2.AsyncClient(timeout=30, limits=limits) as http, anyio.create_task_group() as tasks:
            for n in range(100):
                tasks.start_soon(call, http, url, n)
    expected = {n: 200 if n % 3 and n % 7 else 401 for n in range(100)}
    assert outcomes == expected


@pytest.mark.node
async def test_an_unlisted_env_name_reads_as_nothing_and_the_log_names_the_setting(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    token_endpoint: IdP,
    upstream_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = echo_config(
        upstream_url,
        outbound_auth={
            "strategy": "js",
            "js": {
                "source": str(pointed_at(token_endpoint, EXAMPLES / "get_token.js", tmp_path)),
                "allowed_hosts": [allowed_host(token_endpoint)],
                "env": ["CLIENT_ID"],  # CLIENT_SECRET left out
            },
        },
    )
    with gateway(raw, env=ENV) as url:
        async with mcp_client(url + "/mcp") as client:
            await client.call_tool("echo_search_items", {"q": "fish"})
    (token_request,) = token_endpoint.requests("/token")[:1]
    assert token_request["auth_method"] == "none"  # the secret never reached the script
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "script get_token.js read ctx.env.CLIENT_SECRET, which is not listed in js.env (so it reads as nothing)" in (
        warnings
    )
    assert CLIENT_SECRET not in caplog.text
    assert all(CLIENT_SECRET not in str(r.headers) for r in upstream.requests)


def test_validate_warns_about_fetch_without_allowed_hosts_and_unlisted_env_names(tmp_path: Path) -> None:
    raw = script_config(
        "http://127.0.0.1:9",
        {"strategy": "lua", "lua": {"source": str(EXAMPLES / "lua_ports" / "validate_token.lua")}},
        {"strategy": "js", "js": {"source": str(EXAMPLES / "get_token.js"), "env": ["CLIENT_ID"]}},
    )
    run = run_cli("validate", "--config", str(write_config(tmp_path, raw)), env={"CLIENT_ID": "gateway"})
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        "warning: upstreams[0].outbound_auth.js.source: the script calls fetch, but"
        " upstreams[0].outbound_auth.js.allowed_hosts lists no host, so every fetch fails",
        "warning: upstreams[0].outbound_auth.js.source: the script reads ctx.env.CLIENT_SECRET, but"
        " upstreams[0].outbound_auth.js.env does not list CLIENT_SECRET, so it reads as nothing",
    ]
    assert "config OK" in run.stdout


def test_validate_names_the_key_of_a_broken_script_or_an_unset_env_name(tmp_path: Path) -> None:
    (tmp_path / "bad.js").write_text("return headers[;")
    raw = script_config(
        "http://127.0.0.1:9",
        {"strategy": "js", "js": {"source": "bad.js"}},
        {"strategy": "js", "js": {"source": str(EXAMPLES / "get_token.js"), "env": ["CLIENT_ID", "NOT_SET_ANYWHERE"]}},
    )
    run = run_cli("validate", "--config", str(write_config(tmp_path, raw)), env={"CLIENT_ID": "gateway"})
    assert run.returncode == 2
    assert (
        "upstreams[0].outbound_auth.js.env: environment variable NOT_SET_ANYWHERE is listed but not set" in run.stderr
    )
    del raw["upstreams"][0]["outbound_auth"]
    run = run_cli("validate", "--config", str(write_config(tmp_path, raw)))
    assert run.returncode == 2
    assert "groups[0].inbound_auth.js.source: JavaScript syntax error: 1: SyntaxError:" in run.stderr
    assert "Traceback" not in run.stderr


def _sandbox_threads(script: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"js-{script}-")]


@contextmanager
def serving(path: Path) -> Iterator[tuple[str, GatewayApp]]:
    source = ConfigSource(path)
    app = create_app(source.load(), source=source)
    with ServerThread(app, lifespan="on") as server:
        yield server.url, app


async def eventually(condition: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    with anyio.fail_after(within):
        while True:
            outcome = condition()
            if outcome if isinstance(outcome, bool) else await outcome:
                return
            await anyio.sleep(0.05)


async def test_a_reload_compiles_the_new_script_and_closes_the_old_sandboxes(tmp_path: Path, upstream_url: str) -> None:
    (tmp_path / "echo.yaml").write_text((SPECS / "echo.yaml").read_text())
    script = tmp_path / "check.js"
    script.write_text('return headers["x-pass"] === "one";')
    (tmp_path / "token.js").write_text('return "Bearer gateway-token";')
    raw = echo_config(upstream_url, outbound_auth={"strategy": "js", "js": {"source": "token.js"}})
    raw["server"] = {"reload_interval": "100ms"}
    raw["groups"][0]["inbound_auth"] = {"strategy": "js", "js": {"source": "check.js"}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    with serving(config) as (url, app):
        async with httpx2.AsyncClient(timeout=10) as http:

            async def status(password: str) -> int:
                headers = {**ACCEPT, "X-Pass": password}
                return (await http.post(url + "/mcp", json=INITIALIZE, headers=headers)).status_code

            assert await status("one") == 200
            # Outbound scripts run in worker threads; inbound ones on the event loop's thread, so their
            # one loading worker is gone once the script has loaded.
            assert len(_sandbox_threads("token.js")) == POOL_SIZE
            await eventually(lambda: _sandbox_threads("check.js") == [])
            old = app.gateway
            script.write_text('return headers["x-pass"] === "two";')  # the script is watched with the config
            stamp = script.stat().st_mtime_ns + 10_000_000  # visibly newer where timestamps are coarse
            os.utime(script, ns=(stamp, stamp))
            await eventually(lambda: app.gateway is not old)
            assert await status("two") == 200
            assert await status("one") == 401
            await eventually(lambda: len(_sandbox_threads("token.js")) == POOL_SIZE)  # the old ones stopped
            assert _sandbox_threads("check.js") == []
