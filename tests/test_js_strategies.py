"""`strategy: js` in both directions, through the strategy registries: the Lua contract with a JavaScript script
(results, claims, caching, errors), and the config block that mirrors `lua:`."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import Headers

from mcp_anything.config import ConfigError, parse_config
from mcp_anything.inbound import AuthError, InboundRequest, create_authenticator
from mcp_anything.inbound.script import ScriptAuthenticator
from mcp_anything.js import POOL_SIZE
from mcp_anything.outbound.base import OutboundAuthError
from mcp_anything.outbound.registry import create_outbound_auth
from mcp_anything.outbound.script import ScriptOutboundAuth
from mcp_anything.tools import HttpRequest

pytestmark = pytest.mark.anyio

ENV = {"HMAC_KEY": "k3y-value", "TOKEN": "t0ken-value"}


def config(tmp_path: Path, *, inbound: dict[str, Any] | None = None, outbound: dict[str, Any] | None = None) -> Any:
    upstream: dict[str, Any] = {"name": "api", "openapi": {"source": "spec.yaml"}}
    group: dict[str, Any] = {"name": "g", "upstreams": ["api"], "inbound_auth": {"strategy": "none"}}
    if inbound is not None:
        group["inbound_auth"] = {"strategy": "js", "js": {"source": "auth.js", "timeout": "1s", **inbound}}
    if outbound is not None:
        upstream["outbound_auth"] = {"strategy": "js", "js": {"source": "token.js", **outbound}}
    return parse_config({"groups": [group], "upstreams": [upstream]}, base_dir=tmp_path, env=ENV)


@pytest.fixture
async def built(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`built(direction, source, **js)`: the js strategy of that direction for a script (closed after the test)."""
    made: list[ScriptAuthenticator | ScriptOutboundAuth] = []

    def make(direction: str, source: str, **js: Any) -> ScriptAuthenticator | ScriptOutboundAuth:
        (tmp_path / ("auth.js" if direction == "inbound" else "token.js")).write_text(source)
        root = config(tmp_path, **{direction: js})
        if direction == "inbound":
            auth: Any = create_authenticator(root.groups[0].inbound_auth, root)
        else:
            auth = create_outbound_auth(root.upstreams[0].outbound_auth, root)
        assert isinstance(auth, ScriptAuthenticator | ScriptOutboundAuth)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        await auth.aclose()


@pytest.fixture
def inbound(built: Callable[..., Any]) -> Callable[..., ScriptAuthenticator]:
    return partial(built, "inbound")


@pytest.fixture
def outbound(built: Callable[..., Any]) -> Callable[..., ScriptOutboundAuth]:
    return partial(built, "outbound")


def request(headers: dict[str, str] | None = None) -> InboundRequest:
    return InboundRequest(method="POST", path="/mcp", headers=Headers(headers or {}))


async def applied(auth: ScriptOutboundAuth) -> dict[str, str]:
    outgoing = HttpRequest(method="GET", path="/pets", headers={"authorization": "caller's"})
    await auth.apply(outgoing)
    return outgoing.headers


async def outbound_failure(auth: ScriptOutboundAuth) -> str:
    with pytest.raises(OutboundAuthError) as caught:
        await applied(auth)
    return str(caught.value)


@pytest.mark.parametrize(
    "source",
    [
        'return {sub: "alice", scope: "read write", team: headers["X-Team"]};',
        'return [true, {sub: "alice", scope: ["read", "write"], team: headers["x-team"]}];',
    ],
)
async def test_claims_become_the_identity(inbound, source: str) -> None:
    identity = await inbound(source).authenticate(request({"x-team": "ops"}))
    assert (identity.strategy, identity.subject, identity.scopes) == ("js", "alice", frozenset({"read", "write"}))
    assert identity.claims["team"] == "ops"


async def test_true_is_an_identity_without_claims_and_sees_method_and_path(inbound) -> None:
    identity = await inbound('return method === "POST" && path === "/mcp";').authenticate(request())
    assert (identity.strategy, identity.subject, identity.claims) == ("js", None, {})


async def test_ctx_env_holds_the_listed_secret_for_an_hmac_style_check(inbound) -> None:
    auth = inbound('return headers["x-signature"] === `sig:${ctx.env.HMAC_KEY}`;', env=["HMAC_KEY"])
    assert (await auth.authenticate(request({"x-signature": "sig:k3y-value"}))).strategy == "js"
    with pytest.raises(AuthError):
        await auth.authenticate(request({"x-signature": "sig:undefined"}))


@pytest.mark.parametrize(
    ("source", "logged"),
    [
        ("return false;", "returned false: request denied"),
        ("return [false, {sub: 'alice'}];", "returned false: request denied"),
        ("return {};", "result error: expected true, false or claims as the result, got a object"),
        ("return 'true';", "result error: expected true, false or claims as the result, got a string"),
        ("return;", "got a null or undefined"),
        ("return [true, 'alice'];", "expected the claims as a table of name to value, got a string"),
        ("return {sub: {}};", "claim `sub` must be a string"),
        ("return {valid: false, sub: 'alice'};", "returned claims whose valid is not true: request denied"),
        ("return {allowed: 'yes', authenticated: 0};", "whose allowed, authenticated is not true"),
        ("throw new Error(`bad ${headers.authorization}`);", "runtime error: auth.js:1: Error: bad [redacted]"),
    ],
)
async def test_anything_else_is_denied_with_a_log_line(inbound, caplog, source: str, logged: str) -> None:
    caplog.set_level(logging.INFO, logger="mcp_anything.inbound.script")
    with pytest.raises(AuthError) as caught:
        await inbound(source).authenticate(request({"authorization": "Bearer secret-token-123"}))
    assert caught.value.status == 401
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("inbound JavaScript script auth.js ") and logged in line, line
    assert "secret-token-123" not in caplog.text


async def test_an_authorization_string_is_sent_and_the_script_runs_every_call(outbound) -> None:
    auth = outbound("return `Bearer ${ctx.env.TOKEN}-${Math.random()}`;", env=["TOKEN"])
    first, second = (await applied(auth))["Authorization"], (await applied(auth))["Authorization"]
    assert first.startswith("Bearer t0ken-value-") and first != second
    assert "authorization" not in await applied(auth)  # the caller's header, in any case, is replaced


async def test_a_lifetime_caches_until_refresh(outbound) -> None:
    auth = outbound('return [{"X-Api-Key": `k-${Math.random()}`}, 60];')
    first = await applied(auth)
    assert first["X-Api-Key"].startswith("k-") and await applied(auth) == first
    assert await auth.refresh() is True
    assert await applied(auth) != first


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("return 42;", "got a number"),
        ("return {};", "got a object"),
        ('return ["Bearer x", -5];', "the lifetime (second value) must be a positive number of seconds"),
        ('return "Bearer x\\r\\nX-Evil: 1";', "must be a string without line breaks"),
        ('return ctx.fetch("https://auth.example.com/token").text();', "is not in js.allowed_hosts (it lists no host)"),
        ("return ctx.env.CLIENT_SECRET.trim();", "(it read ctx.env.CLIENT_SECRET, not listed in js.env)"),
    ],
)
async def test_bad_results_and_refusals_are_tool_errors(outbound, source: str, message: str) -> None:
    error = await outbound_failure(outbound(source))
    assert error.startswith("outbound auth script token.js failed (") and message in error, error


async def test_closing_the_outbound_strategy_stops_its_worker_threads(outbound) -> None:
    def threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("js-token.js-")]

    auth = outbound('return "Bearer x";')
    await applied(auth)
    running = threads()
    assert len(running) == POOL_SIZE
    await auth.aclose()
    for thread in running:
        thread.join(timeout=5)
    assert threads() == []


async def test_inbound_checks_run_on_the_calling_thread(inbound) -> None:
    # No worker threads after loading, and many checks in a row on one thread stay apart.
    auth = inbound('const seen = globalThis.seen; globalThis.seen = headers["x-n"]; return seen === undefined;')
    for n in range(20):
        assert (await auth.authenticate(request({"x-n": str(n)}))).strategy == "js"
    await auth.aclose()
    assert await auth.authenticate(request({"x-n": "after close"}))  # a closed thread's runtime is rebuilt


def test_the_js_block_mirrors_lua_and_has_the_issue_defaults(tmp_path: Path) -> None:
    root = config(tmp_path, inbound={"timeout": "100ms"}, outbound={})
    assert root.groups[0].inbound_auth.js.timeout == 0.1
    assert root.upstreams[0].outbound_auth.js.timeout == 5.0
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, inbound={"params": {"a": "b"}, "allowed_hosts": ["x"]})
    assert sorted(caught.value.problems) == [
        "groups[0].inbound_auth.js.allowed_hosts: unknown key (check the spelling; see config.example.yaml)",
        "groups[0].inbound_auth.js.params: unknown key (check the spelling; see config.example.yaml)",
    ]
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, outbound={"env": ["CLIENT-ID"]})
    assert caught.value.problems == [
        "upstreams[0].outbound_auth.js.env: 'CLIENT-ID' is not an environment variable name"
    ]


async def test_an_outbound_error_quoting_a_ctx_env_secret_does_not_show_it(outbound) -> None:
    # The message becomes the tool's error text, which the caller reads.
    message = await outbound_failure(outbound("throw new Error(`refused ${ctx.env.TOKEN}`);", env=["TOKEN"]))
    assert "refused [redacted]" in message and "t0ken-value" not in message


async def test_an_inbound_error_quoting_a_ctx_env_secret_is_logged_without_it(inbound, caplog) -> None:
    caplog.set_level(logging.INFO, logger="mcp_anything.inbound.script")
    with pytest.raises(AuthError):
        await inbound("throw new Error(`expected ${ctx.env.HMAC_KEY}`);", env=["HMAC_KEY"]).authenticate(request())
    assert "Error: expected [redacted]" in caplog.text and "k3y-value" not in caplog.text
