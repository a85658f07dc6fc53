"""`outbound_auth: {strategy: lua}`: a script fetches credentials from a real token endpoint on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_anything.config import ConfigError, parse_config
from mcp_anything.outbound import OutboundAuthError, create_outbound_auth
from mcp_anything.outbound.lua import LuaOutboundAuth
from mcp_anything.tools import HttpRequest
from tests.support import node
from tests.support.servers import ServerThread, free_port

SCRIPTS = Path(__file__).parent.parent / "scripts"
CLIENT_SECRET = "s3cr3t-client-secret"


class TokenServer:
    """An OAuth2 token endpoint (client credentials, form-encoded) that records what it receives."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.delay = 0.0
        self.app = Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/slow", self.slow),
                Route("/redirect", self.redirect),
                Route("/big", self.big),
            ]
        )

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        self.requests.append({"form": form, "headers": dict(request.headers)})
        await anyio.sleep(self.delay)
        if self.fail_with is not None:
            return JSONResponse({"error": "invalid_client", "error_description": "bad secret"}, self.fail_with)
        if form.get("grant_type") != "client_credentials" or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, 401)
        n = len(self.requests)
        return JSONResponse(
            {"access_token": f"token-{n}", "token_type": "Bearer", "expires_in": 3600, "scope": form.get("scope")},
            headers={"X-Token-Number": str(n)},
        )

    async def slow(self, request: Request) -> Response:
        self.requests.append({"path": "/slow"})
        await anyio.sleep(2)
        return Response("late")

    async def redirect(self, request: Request) -> Response:
        self.requests.append({"path": "/redirect"})
        return RedirectResponse("http://localhost:1/elsewhere", 302)

    async def big(self, request: Request) -> Response:
        return Response(b"x" * (3 << 20))


@pytest.fixture(scope="module")
def token_server() -> Iterator[tuple[TokenServer, str]]:
    app = TokenServer()
    with ServerThread(app.app, lifespan="off") as server:
        yield app, server.url


@pytest.fixture(scope="module")
def oauth2_mock_server() -> Iterator[str]:
    """oauth2-mock-server (npm) on 127.0.0.1: a real OAuth2 token endpoint."""
    port = free_port()
    process = subprocess.Popen(
        node.command("oauth2-mock-server", "-a", "127.0.0.1", "-p", str(port)),
        env=node.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("oauth2-mock-server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def endpoint(token_server: tuple[TokenServer, str]) -> Iterator[tuple[TokenServer, str]]:
    server, url = token_server
    server.requests.clear()
    server.fail_with = None
    server.delay = 0.0
    yield server, url


@pytest.fixture
async def outbound(tmp_path: Path) -> AsyncIterator[Callable[..., LuaOutboundAuth]]:
    """`outbound(source, **lua)`: the Lua outbound auth of upstream `api` for a script (closed after the test)."""
    made: list[LuaOutboundAuth] = []

    def make(source: str | None = None, **lua: Any) -> LuaOutboundAuth:
        if source is not None:
            (tmp_path / "token.lua").write_text(source)
        config = parse_config(
            {
                "groups": [{"name": "g", "upstreams": ["other", "api"]}],
                "upstreams": [
                    {"name": "other", "openapi": {"source": "spec.yaml"}},
                    {
                        "name": "api",
                        "openapi": {"source": "spec.yaml"},
                        "outbound_auth": {"strategy": "lua", "lua": {"source": "token.lua", **lua}},
                    },
                ],
            },
            base_dir=tmp_path,
            env={"CLIENT_SECRET": CLIENT_SECRET},
        )
        auth = create_outbound_auth(config.upstreams[1].outbound_auth, config)
        assert isinstance(auth, LuaOutboundAuth)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        await auth.aclose()


async def applied(auth: LuaOutboundAuth, headers: dict[str, str] | None = None) -> dict[str, str]:
    request = HttpRequest(method="GET", path="/pets", headers=dict(headers or {}))
    await auth.apply(request)
    return request.headers


async def failure(auth: LuaOutboundAuth) -> str:
    with pytest.raises(OutboundAuthError) as caught:
        await applied(auth)
    message = str(caught.value)
    assert CLIENT_SECRET not in message
    return message


class TestShippedExample:
    @pytest.fixture
    def example(self, tmp_path: Path, outbound) -> Callable[[str], LuaOutboundAuth]:
        shutil.copy(SCRIPTS / "get_token.lua", tmp_path / "token.lua")

        def make(token_url: str) -> LuaOutboundAuth:
            params = {
                "token_url": token_url,
                "client_id": "gateway",
                "client_secret": "${CLIENT_SECRET}",
                "scope": "read:data write:data",
            }
            return outbound(allowed_hosts=["127.0.0.1"], params=params)

        return make

    @pytest.fixture
    def auth(self, example, endpoint: tuple[TokenServer, str]) -> LuaOutboundAuth:
        return example(f"{endpoint[1]}/token")

    async def test_gets_a_token_from_oauth2_mock_server(self, example, oauth2_mock_server: str) -> None:
        auth = example(f"{oauth2_mock_server}/token")
        headers = await applied(auth)
        scheme, token = headers["Authorization"].split(" ")
        payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert scheme == "Bearer"
        assert payload["iss"] == httpx2.get(f"{oauth2_mock_server}/.well-known/openid-configuration").json()["issuer"]
        assert payload["scope"] == "read:data write:data"
        assert await applied(auth) == headers  # cached: the mock server grants 3600 s

    async def test_fetches_a_token_with_client_credentials(self, auth, endpoint) -> None:
        server, _ = endpoint
        assert await applied(auth) == {"Authorization": "Bearer token-1"}
        (received,) = server.requests
        assert received["form"] == {
            "grant_type": "client_credentials",
            "client_id": "gateway",
            "client_secret": CLIENT_SECRET,
            "scope": "read:data write:data",
        }
        assert received["headers"]["content-type"] == "application/x-www-form-urlencoded"

    async def test_caches_for_the_returned_lifetime_and_refreshes_after_a_401(self, auth, endpoint) -> None:
        server, _ = endpoint
        assert await applied(auth) == {"Authorization": "Bearer token-1"}
        assert await applied(auth) == {"Authorization": "Bearer token-1"}
        assert len(server.requests) == 1
        assert await auth.refresh() is True
        assert await applied(auth) == {"Authorization": "Bearer token-2"}
        assert len(server.requests) == 2

    async def test_concurrent_calls_share_one_token_request(self, auth, endpoint) -> None:
        server, _ = endpoint
        server.delay = 0.1
        results: list[dict[str, str]] = []

        async def one() -> None:
            results.append(await applied(auth))

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
        assert len(server.requests) == 1
        assert results == [{"Authorization": "Bearer token-1"}] * 100

    async def test_token_endpoint_error_is_reported_without_the_secret(self, auth, endpoint) -> None:
        server, _ = endpoint
        server.fail_with = 401
        message = await failure(auth)
        assert "token endpoint answered HTTP 401 (invalid_client)" in message
        assert message.startswith("outbound auth script token.lua failed (runtime): ")
        server.fail_with = None
        assert await applied(auth) == {"Authorization": "Bearer token-2"}

    async def test_replaces_an_existing_authorization_header(self, auth) -> None:
        assert await applied(auth, {"authorization": "Bearer caller", "Accept": "x"}) == {
            "Accept": "x",
            "Authorization": "Bearer token-1",
        }


async def test_host_outside_allowed_hosts_is_an_error(outbound, endpoint) -> None:
    server, url = endpoint
    auth = outbound(
        f'return fetch("{url.replace("127.0.0.1", "localhost")}/token", {{method = "POST"}}).body',
        allowed_hosts=["127.0.0.1"],
    )
    message = await failure(auth)
    assert "fetch: host 'localhost' is not in allowed_hosts" in message
    assert server.requests == []


async def test_no_allowed_hosts_means_no_fetch(outbound, endpoint) -> None:
    server, url = endpoint
    message = await failure(outbound(f'return fetch("{url}/token").body'))
    assert "fetch: host '127.0.0.1' is not in allowed_hosts" in message
    assert server.requests == []


async def test_redirects_are_not_followed(outbound, endpoint) -> None:
    _, url = endpoint
    auth = outbound(
        f'local r = fetch("{url}/redirect") return "Bearer " .. r.status .. " " .. r.headers["Location"]',
        allowed_hosts=["127.0.0.1"],
    )
    assert await applied(auth) == {"Authorization": "Bearer 302 http://localhost:1/elsewhere"}


async def test_fetch_response_headers_are_case_insensitive(outbound, endpoint) -> None:
    _, url = endpoint
    auth = outbound(
        f"""
        local r = fetch("{url}/token", {{
          method = "POST",
          headers = {{["Content-Type"] = "application/x-www-form-urlencoded"}},
          body = "grant_type=client_credentials&client_secret={CLIENT_SECRET}",
        }})
        return {{["X-Token"] = json_decode(r.body).access_token,
                 ["X-N"] = r.headers["x-token-number"] .. r.headers["X-Token-Number"]}}
        """,
        allowed_hosts=["127.0.0.1"],
    )
    assert await applied(auth) == {"X-Token": "token-1", "X-N": "11"}


async def test_a_slow_endpoint_ends_at_the_timeout(outbound, endpoint) -> None:
    _, url = endpoint
    auth = outbound(f'return fetch("{url}/slow").body', allowed_hosts=["127.0.0.1"], timeout="300ms")
    started = time.monotonic()
    message = await failure(auth)
    assert time.monotonic() - started < 0.6
    # fetch gives up at the deadline; the deadline hook may end the script before it sees fetch's error.
    assert "failed (timeout): exceeded 0.3s" in message or "did not answer within the script's timeout" in message


async def test_an_infinite_loop_ends_at_the_timeout(outbound) -> None:
    auth = outbound("while true do end", timeout="200ms")
    started = time.monotonic()
    assert "failed (timeout)" in await failure(auth)
    assert time.monotonic() - started < 0.4


async def test_a_response_larger_than_the_memory_limit_is_refused(outbound, endpoint) -> None:
    _, url = endpoint
    auth = outbound(f'return fetch("{url}/big").body', allowed_hosts=["127.0.0.1"], memory_limit_mb=2)
    assert "larger than memory_limit_mb" in await failure(auth)


async def test_the_event_loop_keeps_running_during_a_fetch(outbound, endpoint) -> None:
    _, url = endpoint
    auth = outbound(f'return fetch("{url}/slow").body', allowed_hosts=["127.0.0.1"], timeout="300ms")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await failure(auth)
        tg.cancel_scope.cancel()
    assert ticks >= 5  # about 30 when idle; a blocked loop would manage 0 or 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("return nil", "expected an Authorization header value (string) or a table of headers, got a nil"),
        ("return {}", "got a table"),
        ('return "Bearer x\\r\\nX-Evil: 1"', "must be a string without line breaks"),
        ('return {["Bad Name"] = "v"}', "'Bad Name' is not a valid header name"),
        ('return "Bearer x", -5', "lifetime) must be a positive number of seconds"),
        ('return "Bearer x", "soon"', "lifetime) must be a positive number of seconds"),
        ('error("no token for you", 0)', "failed (runtime): no token for you"),
        ('return json_decode("{bad")', "json_decode: not valid JSON"),
        ('return fetch("ftp://127.0.0.1/x")', "only http and https URLs are allowed"),
        ('return fetch("http://127.0.0.1/x", {verb = "GET"})', "fetch: unknown option 'verb'"),
        ('return fetch("http://127.0.0.1/x", {headers = {A = "1\\n2"}})', "must be a string without line breaks"),
        ("return os.getenv('CLIENT_SECRET')", "attempt to index a nil value (global 'os')"),
    ],
)
async def test_bad_scripts_give_clear_errors(outbound, source: str, message: str) -> None:
    error = await failure(outbound(source, allowed_hosts=["127.0.0.1"]))
    assert message in error
    assert error.startswith("outbound auth script token.lua failed (")


async def test_without_a_lifetime_the_script_runs_every_call(outbound) -> None:
    auth = outbound('counter = (counter or 0) + 1 return {["X-Api-Key"] = "k" .. counter}')
    # A fresh environment per run: globals never carry over, so every run says k1.
    assert await applied(auth) == {"X-Api-Key": "k1"}
    assert await applied(auth) == {"X-Api-Key": "k1"}


async def test_json_round_trip(outbound) -> None:
    auth = outbound(
        'local v = json_decode(\'{"a": [1, 2, {"b": null}], "c": "\\\\u00e9"}\')\n'
        'return {["X-Json"] = json_encode(v), ["X-C"] = v.c}',
    )
    headers = await applied(auth)
    assert json.loads(headers["X-Json"]) == {"a": [1, 2, {}], "c": "é"}
    assert headers["X-C"] == "é"


async def test_syntax_error_names_the_config_key(outbound) -> None:
    with pytest.raises(ConfigError) as caught:
        outbound("return 'unterminated")
    (problem,) = caught.value.problems
    assert problem.startswith("upstreams[1].outbound_auth.lua.source: Lua syntax error: token.lua:1:")


@pytest.mark.parametrize("host", ["https://auth.example.com", "auth.example.com:443", "auth.example.com/token", ""])
async def test_allowed_hosts_must_be_bare_host_names(outbound, host: str) -> None:
    with pytest.raises(ConfigError, match=r"upstreams\[1\]\.outbound_auth\.lua\.allowed_hosts: expected a bare host"):
        outbound("return 'x'", allowed_hosts=[host])
