"""`outbound_auth: {strategy: lua}`: scripts fetch credentials from real servers on 127.0.0.1.

The token endpoint is oauth2-mock-server (tests/support/idp.py); a small ASGI
app covers what it cannot answer (a redirect, an oversized body).
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mcp_anything.config import ConfigError, parse_config
from mcp_anything.outbound import OutboundAuthError, create_outbound_auth
from mcp_anything.outbound.script import ScriptOutboundAuth
from mcp_anything.tools import HttpRequest
from tests.support.idp import IdP
from tests.support.loop import loop_ticks_while
from tests.support.servers import ServerThread

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node]

EXAMPLES = Path(__file__).parent.parent / "examples"
CLIENT_ID = "gateway"
CLIENT_SECRET = "s3cr3t-client-secret"


@pytest.fixture(autouse=True)
def _idp_knows_the_client(idp: IdP) -> None:
    idp.configure(clients={CLIENT_ID: CLIENT_SECRET})


async def _redirect(request: Request) -> Response:
    return RedirectResponse("http://localhost:1/elsewhere", 302)


async def _big(request: Request) -> Response:
    return Response(b"x" * (3 << 20))


@pytest.fixture(scope="module")
def odd_server() -> Iterator[str]:
    """Answers that a token endpoint does not give: a redirect and a 3 MiB body."""
    app = Starlette(routes=[Route("/redirect", _redirect), Route("/big", _big)])
    with ServerThread(app, lifespan="off") as server:
        yield server.url


@pytest.fixture
async def outbound(tmp_path: Path) -> AsyncIterator[Callable[..., ScriptOutboundAuth]]:
    """`outbound(source, **lua)`: the Lua outbound auth of upstream `api` for a script (closed after the test)."""
    made: list[ScriptOutboundAuth] = []

    def make(source: str | None = None, **lua: Any) -> ScriptOutboundAuth:
        if source is not None:
            (tmp_path / "token.lua").write_text(source)
        config = parse_config(
            {
                "groups": [{"name": "g", "upstreams": ["other", "api"], "inbound_auth": {"strategy": "none"}}],
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
        assert isinstance(auth, ScriptOutboundAuth)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        await auth.aclose()


async def applied(auth: ScriptOutboundAuth, headers: dict[str, str] | None = None) -> dict[str, str]:
    request = HttpRequest(method="GET", path="/pets", headers=dict(headers or {}))
    await auth.apply(request)
    return request.headers


async def failure(auth: ScriptOutboundAuth) -> str:
    with pytest.raises(OutboundAuthError) as caught:
        await applied(auth)
    message = str(caught.value)
    assert CLIENT_SECRET not in message
    return message


def claims(authorization: str) -> dict[str, Any]:
    scheme, token = authorization.split(" ")
    assert scheme == "Bearer"
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return payload


class TestShippedExample:
    @pytest.fixture
    def auth(self, tmp_path: Path, outbound, idp: IdP) -> ScriptOutboundAuth:
        shutil.copy(EXAMPLES / "get_token.lua", tmp_path / "token.lua")
        params = {
            "token_url": idp.token_url,
            "client_id": CLIENT_ID,
            "client_secret": "${CLIENT_SECRET}",
            "scope": "read:data write:data",
        }
        return outbound(allowed_hosts=["127.0.0.1"], params=params)

    async def test_fetches_a_token_with_client_credentials(self, auth, idp: IdP) -> None:
        headers = await applied(auth)
        assert list(headers) == ["Authorization"]
        assert claims(headers["Authorization"])["scope"] == "read:data write:data"
        (received,) = idp.requests("/token")
        assert (received["auth_method"], received["client_id"]) == ("client_secret_post", CLIENT_ID)
        assert received["form"] == {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "scope": "read:data write:data",
        }

    async def test_caches_for_the_returned_lifetime_and_refreshes_after_a_401(self, auth, idp: IdP) -> None:
        first = await applied(auth)
        assert await applied(auth) == first
        assert len(idp.requests("/token")) == 1
        assert await auth.refresh() is True
        second = await applied(auth)
        assert claims(second["Authorization"])["jti"] != claims(first["Authorization"])["jti"]
        assert len(idp.requests("/token")) == 2

    async def test_renews_when_the_lifetime_runs_out(self, auth, idp: IdP) -> None:
        idp.configure(expires_in=31)  # the script renews 30 s early: a 1 s lifetime
        first = await applied(auth)
        await anyio.sleep(1.1)
        assert await applied(auth) != first
        assert len(idp.requests("/token")) == 2

    async def test_concurrent_calls_share_one_token_request(self, auth, idp: IdP) -> None:
        idp.configure(faults={"/token": {"delay_ms": 100}})
        results: list[dict[str, str]] = []

        async def one() -> None:
            results.append(await applied(auth))

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
        assert len(idp.requests("/token")) == 1
        assert len(results) == 100 and all(r == results[0] for r in results)

    async def test_token_endpoint_error_is_reported_without_the_secret(self, auth, idp: IdP) -> None:
        idp.fail("/token", 400, {"error": "invalid_scope", "error_description": "no such scope"})
        message = await failure(auth)
        assert message == (
            "outbound auth script token.lua failed (runtime): token endpoint answered HTTP 400 (invalid_scope)"
        )
        idp.reset()
        assert "Authorization" in await applied(auth)

    async def test_a_wrong_client_secret_is_refused_by_the_endpoint(self, auth, idp: IdP) -> None:
        idp.configure(clients={CLIENT_ID: "another-secret"})
        assert "token endpoint answered HTTP 401 (invalid_client)" in await failure(auth)

    async def test_the_endpoint_down_then_back(self, auth, idp: IdP) -> None:
        with idp.outage():
            assert "fetch: request to 127.0.0.1 failed (ConnectError)" in await failure(auth)
        assert "Authorization" in await applied(auth)

    async def test_replaces_an_existing_authorization_header(self, auth) -> None:
        headers = await applied(auth, {"authorization": "Bearer caller", "Accept": "x"})
        assert list(headers) == ["Accept", "Authorization"]
        assert headers["Authorization"] != "Bearer caller"


async def test_host_outside_allowed_hosts_is_an_error(outbound, idp: IdP) -> None:
    auth = outbound(
        f'return fetch("{idp.token_url.replace("127.0.0.1", "localhost")}", {{method = "POST"}}).body',
        allowed_hosts=["127.0.0.1"],
    )
    message = await failure(auth)
    assert "fetch: host 'localhost' is not in lua.allowed_hosts" in message
    assert idp.requests() == []


async def test_no_allowed_hosts_means_no_fetch(outbound, idp: IdP) -> None:
    message = await failure(outbound(f'return fetch("{idp.token_url}").body'))
    assert "fetch: host '127.0.0.1' is not in lua.allowed_hosts (it lists no host)" in message
    assert idp.requests() == []


async def test_redirects_are_not_followed(outbound, odd_server: str) -> None:
    auth = outbound(
        f'local r = fetch("{odd_server}/redirect") return "Bearer " .. r.status .. " " .. r.headers["Location"]',
        allowed_hosts=["127.0.0.1"],
    )
    assert await applied(auth) == {"Authorization": "Bearer 302 http://localhost:1/elsewhere"}


async def test_fetch_sends_headers_and_body_and_reads_headers_case_insensitively(outbound, idp: IdP) -> None:
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    auth = outbound(
        f"""
        local r = fetch("{idp.token_url}", {{
          method = "POST",
          headers = {{["Content-Type"] = "application/x-www-form-urlencoded", Authorization = "Basic {basic}"}},
          body = "grant_type=client_credentials&scope=a",
        }})
        return {{["X-Token"] = json_decode(r.body).access_token,
                 ["X-Type"] = r.headers["content-type"] .. "|" .. r.headers["Content-Type"]}}
        """,
        allowed_hosts=["127.0.0.1"],
    )
    headers = await applied(auth)
    assert headers["X-Type"].startswith("application/json") and headers["X-Type"].count("application/json") == 2
    assert claims(f"Bearer {headers['X-Token']}")["scope"] == "a"
    (received,) = idp.requests("/token")
    assert received["auth_method"] == "client_secret_basic"


async def test_a_slow_endpoint_ends_at_the_timeout(outbound, idp: IdP) -> None:
    idp.configure(faults={"/token": {"delay_ms": 2000}})
    auth = outbound(
        f'return fetch("{idp.token_url}", {{method = "POST"}}).body', allowed_hosts=["127.0.0.1"], timeout="300ms"
    )
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


async def test_a_response_larger_than_the_memory_limit_is_refused(outbound, odd_server: str) -> None:
    auth = outbound(f'return fetch("{odd_server}/big").body', allowed_hosts=["127.0.0.1"], memory_limit_mb=2)
    assert "larger than memory_limit_mb" in await failure(auth)


async def test_the_event_loop_keeps_running_during_a_fetch(outbound, idp: IdP) -> None:
    idp.configure(faults={"/token": {"delay_ms": 2000}})
    auth = outbound(
        f'return fetch("{idp.token_url}", {{method = "POST"}}).body', allowed_hosts=["127.0.0.1"], timeout="300ms"
    )
    ticks = await loop_ticks_while(failure(auth))
    assert ticks >= 5  # about 30 when idle; a blocked loop would manage 0 or 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("return nil", "expected an Authorization header value (string) or a table of headers, got a nil"),
        ("return {}", "got a table"),
        ('return "Bearer x\\r\\nX-Evil: 1"', "must be a string without line breaks"),
        ('return {["Bad Name"] = "v"}', "'Bad Name' is not a valid header name"),
        ('return "Bearer x", -5', "lifetime (second value) must be a positive number of seconds"),
        ('return "Bearer x", "soon"', "lifetime (second value) must be a positive number of seconds"),
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
    assert problem.startswith("lua.source: Lua syntax error: token.lua:1:")


@pytest.mark.parametrize(
    "host",
    ["https://auth.example.com", "auth.example.com:https", "auth.example.com/token", "user@auth.example.com", ""],
)
async def test_allowed_hosts_must_be_host_names(outbound, host: str) -> None:
    with pytest.raises(ConfigError, match=r"upstreams\[1\]\.outbound_auth\.lua\.allowed_hosts: expected a host name"):
        outbound("return 'x'", allowed_hosts=[host])


async def test_an_allowed_host_with_a_port_allows_that_port_only(outbound, idp: IdP) -> None:
    port = int(idp.token_url.split(":")[2].split("/")[0])
    other = f'fetch("{idp.token_url.replace(str(port), str(port + 1))}")'
    auth = outbound(f"return {other}.body", allowed_hosts=[f"127.0.0.1:{port}"])
    assert "fetch: host '127.0.0.1' is not in lua.allowed_hosts" in await failure(auth)
    auth = outbound(
        f'return "Bearer " .. fetch("{idp.token_url}", {{method = "POST"}}).status', allowed_hosts=[f"127.0.0.1:{port}"]
    )
    assert (await applied(auth))["Authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("source", "settings"),
    [
        ('error("the IdP refused " .. params.client_secret)', {"params": {"client_secret": "${CLIENT_SECRET}"}}),
        ('error("the IdP refused " .. ctx.env.CLIENT_SECRET)', {"env": ["CLIENT_SECRET"]}),
    ],
)
async def test_a_script_error_quoting_a_secret_does_not_show_it(outbound, source: str, settings: dict) -> None:
    # The message becomes the tool's error text: the script's secrets are scrubbed from it, as headers are inbound.
    message = await failure(outbound(source, **settings))
    assert "the IdP refused [redacted]" in message
