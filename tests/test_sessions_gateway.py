"""Sessions end to end: real gateways on 127.0.0.1, the official MCP client, a real Redis and identity provider.

A 2025-11-25 session opened on one gateway is served by another holding the same key; ended sessions are
refused by every gateway sharing the Redis revocation list; one caller cannot crowd out another's sessions;
streams are capped; 2026-07-28 clients get change notifications on a `subscriptions/listen` stream.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml
from mcp.client.subscriptions import ToolsListChanged

from mcp_anything.app import GatewayApp, create_app
from mcp_anything.config import parse_config
from tests.support.cli import serving_process
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import ACCEPT, INITIALIZE, LIST, NOT_FOUND, mcp_client
from tests.support.metrics import scrape
from tests.support.openapi import SPECS
from tests.support.redis import redis_server
from tests.support.servers import ServerThread, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KEY = "a-session-key-of-at-least-32-bytes!"
MODERN = "2026-07-28"


def sessions_config(upstream_url: str, **sessions: Any) -> dict[str, Any]:
    raw = echo_config(upstream_url)
    raw["server"] = {"sessions": {"key": KEY, **sessions}}
    return raw


def api_keys(raw: dict[str, Any], *names: str) -> dict[str, Any]:
    raw["groups"][0]["inbound_auth"] = {"strategy": "apikey", "apikey": {"values": {n: f"key-{n}" for n in names}}}
    return raw


def as_caller(name: str) -> dict[str, str]:
    return {**ACCEPT, "X-API-Key": f"key-{name}"}


async def initialize(http: httpx2.AsyncClient, url: str, headers: dict[str, str] | None = None) -> str:
    response = await http.post(url, json=INITIALIZE, headers=headers or ACCEPT)
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


def with_session(session: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {**(headers or ACCEPT), "Mcp-Session-Id": session}


class RoundRobin(httpx2.AsyncBaseTransport):
    """Sends each request to the next of `bases` in turn, over real HTTP: what a balancer without stickiness does."""

    def __init__(self, bases: list[str]) -> None:
        self._bases = [httpx2.URL(b) for b in bases]
        self._transport = httpx2.AsyncHTTPTransport()
        self.sent: list[tuple[int, str, str]] = []  # (which gateway, HTTP method, JSON-RPC method)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        index = len(self.sent) % len(self._bases)
        base = self._bases[index]
        request.url = request.url.copy_with(host=base.host, port=base.port)
        rpc = ""
        if request.method == "POST":
            rpc = yaml.safe_load(request.content or b"{}").get("method", "")
        self.sent.append((index, request.method, rpc))
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


async def test_two_gateways_with_one_key_serve_one_official_client_session(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    raw = sessions_config(upstream_url)
    with gateway(raw) as first, gateway(raw) as second:
        balancer = RoundRobin([first, second])
        async with (
            httpx2.AsyncClient(transport=balancer, timeout=10) as http,
            Client(streamable_http_client(first + "/mcp", http_client=http), mode="legacy") as client,
        ):
            tools = {t.name for t in (await client.list_tools()).tools}
            results = [await client.call_tool("echo_get_item", {"itemId": str(i)}) for i in range(6)]
        assert "echo_get_item" in tools
        assert [r.is_error for r in results] == [False] * 6
        posts = [(index, rpc) for index, method, rpc in balancer.sent if method == "POST"]
        assert posts[0] == (0, "initialize"), posts
        assert {index for index, rpc in posts if rpc == "tools/call"} == {0, 1}, "calls landed on both gateways"


async def test_without_a_shared_key_a_session_stays_on_its_gateway(gateway: GatewayFactory, upstream_url: str) -> None:
    raw = echo_config(upstream_url)  # no server.sessions.key: each process makes its own
    with gateway(raw) as first, gateway(raw) as second:
        async with httpx2.AsyncClient(timeout=10) as http:
            session = await initialize(http, first + "/mcp")
            assert (await http.post(first + "/mcp", json=LIST, headers=with_session(session))).status_code == 200
            refused = await http.post(second + "/mcp", json=LIST, headers=with_session(session))
    assert (refused.status_code, refused.json()) == (404, NOT_FOUND)


async def test_forged_altered_and_foreign_ids_are_refused_like_unknown_sessions(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    raw = sessions_config(upstream_url)
    raw["groups"].append(
        {"name": "other", "endpoint": "/other", "upstreams": ["echo"], "inbound_auth": {"strategy": "none"}}
    )
    other_key = sessions_config(upstream_url, key="another-session-key-of-32-bytes-or-more")
    with gateway(raw) as url, gateway(other_key) as stranger:
        async with httpx2.AsyncClient(timeout=10) as http:
            session = await initialize(http, url + "/mcp")
            foreign = await initialize(http, url + "/other")
            sealed_elsewhere = await initialize(http, stranger + "/mcp")
            flipped = session[:60] + ("A" if session[60] != "A" else "B") + session[61:]
            bad = {
                "unknown": "0123456789abcdef0123456789abcdef",
                "altered": flipped,
                "truncated": session[:-1],
                "extended": session + "A",
                "other endpoint": foreign,
                "other key": sealed_elsewhere,
            }
            answers = {
                name: await http.post(url + "/mcp", json=LIST, headers=with_session(value))
                for name, value in bad.items()
            }
            assert (await http.post(url + "/mcp", json=LIST, headers=with_session(session))).status_code == 200
    assert {name: (r.status_code, r.json()) for name, r in answers.items()} == {name: (404, NOT_FOUND) for name in bad}


@pytest.mark.redis
async def test_delete_on_one_gateway_ends_the_session_on_another_through_redis(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    with redis_server() as redis_url:
        raw = sessions_config(upstream_url, revocations=redis_url)
        with gateway(raw) as first, gateway(raw) as second:
            async with httpx2.AsyncClient(timeout=10) as http:
                session = await initialize(http, first + "/mcp")
                served = await http.post(second + "/mcp", json=LIST, headers=with_session(session))
                assert served.status_code == 200
                ended = await http.delete(second + "/mcp", headers=with_session(session))
                assert ended.status_code == 200
                answers = [
                    await http.post(u + "/mcp", json=LIST, headers=with_session(session)) for u in (first, second)
                ]
                assert [(a.status_code, a.json()) for a in answers] == [(404, NOT_FOUND)] * 2
                again = await http.delete(first + "/mcp", headers=with_session(session))
                assert again.status_code == 404, "an ended session cannot be ended again"


async def test_an_unreachable_revocation_list_refuses_sessions_rather_than_accept_ended_ones(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    raw = sessions_config(upstream_url, revocations=f"redis://127.0.0.1:{free_port()}/0")
    with gateway(raw) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            session = await initialize(http, url + "/mcp")  # opening needs no lookup
            refused = await http.post(url + "/mcp", json=LIST, headers=with_session(session))
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "retry" in refused.json()["error"]["message"]


async def test_a_session_flood_by_one_caller_cannot_evict_anothers_session(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    raw = api_keys(sessions_config(upstream_url, initialize_rate=None), "alice", "bob")
    with gateway(raw) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            bob = await initialize(http, url + "/mcp", as_caller("bob"))
            flood = [await initialize(http, url + "/mcp", as_caller("alice")) for _ in range(300)]

            async def status(session: str, caller: str) -> int:
                response = await http.post(url + "/mcp", json=LIST, headers=with_session(session, as_caller(caller)))
                return response.status_code

            assert await status(bob, "bob") == 200, "bob's session survived alice's 300 initializes"
            assert await status(flood[-100], "alice") == 200, "alice keeps her 100 most recent sessions"
            assert await status(flood[-101], "alice") == 404, "and her older ones end"
            assert await status(bob, "alice") == 403, "a session belongs to the caller that opened it"


async def test_initialize_is_rate_limited_per_caller(gateway: GatewayFactory, upstream_url: str) -> None:
    raw = api_keys(sessions_config(upstream_url, initialize_rate="3/minute"), "alice", "bob")
    with gateway(raw) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            for _ in range(3):
                await initialize(http, url + "/mcp", as_caller("alice"))
            limited = await http.post(url + "/mcp", json=INITIALIZE, headers=as_caller("alice"))
            await initialize(http, url + "/mcp", as_caller("bob"))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "server.sessions.initialize_rate (3/minute per caller)" in limited.json()["error"]["message"]


@contextmanager
def served_app(raw: dict[str, Any]) -> Iterator[tuple[str, GatewayApp]]:
    app = create_app(parse_config(raw, base_dir=SPECS, env={}))
    with ServerThread(app, lifespan="on") as server:
        yield server.url, app


async def open_stream(port: int, session: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        b"Mcp-Session-Id: " + session.encode() + b"\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head


async def test_two_thousand_get_streams_on_one_session_do_not_stay_open(upstream_url: str) -> None:
    with served_app(sessions_config(upstream_url)) as (url, app):
        port = int(url.rsplit(":", 1)[1])
        async with httpx2.AsyncClient(timeout=10) as http:
            session = await initialize(http, url + "/mcp")
        previous: tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes] | None = None
        for _ in range(2000):
            current = await open_stream(port, session)
            assert current[2].startswith(b"HTTP/1.1 200"), current[2]
            if previous is not None:
                # The new stream replaced this one: it ends cleanly (the last chunk), not by a dropped connection.
                rest = await asyncio.wait_for(previous[0].readuntil(b"0\r\n\r\n"), 5)
                assert rest.endswith(b"0\r\n\r\n")
                previous[1].close()
            previous = current
            assert app.sessions.stream_count == 1
        assert previous is not None
        previous[1].close()


async def test_the_streams_of_one_process_are_capped(upstream_url: str) -> None:
    with served_app(sessions_config(upstream_url, max_streams=2)) as (url, app):
        port = int(url.rsplit(":", 1)[1])
        async with httpx2.AsyncClient(timeout=10) as http:
            sessions = [await initialize(http, url + "/mcp") for _ in range(3)]
        held = [await open_stream(port, s) for s in sessions[:2]]
        refused = await open_stream(port, sessions[2])
        assert refused[2].startswith(b"HTTP/1.1 503"), refused[2]
        assert b"retry-after: 5" in refused[2].lower()
        assert app.sessions.stream_count == 2
        assert (await scrape(url)).value("mcp_anything_streams") == 2
        for _, writer, _ in [*held, refused]:
            writer.close()


@pytest.fixture
def jwt_gateway(gateway: GatewayFactory, upstream_url: str, idp: IdP) -> Iterator[str]:
    raw = sessions_config(upstream_url)
    raw["groups"][0]["inbound_auth"] = {"strategy": "jwt", "jwt": {"issuer": idp.issuer, "audience": "mcp"}}
    with gateway(raw) as url:
        yield url


@pytest.mark.node
async def test_two_callers_without_sub_cannot_share_a_session(jwt_gateway: str, idp: IdP) -> None:
    # Two clients' tokens, neither with `sub`, from the same issuer: bound by client, not by issuer.
    first, second = (idp.token(aud="mcp", sub=None, client_id=client) for client in ("agent-a", "agent-b"))
    async with httpx2.AsyncClient(timeout=10) as http:
        url = jwt_gateway + "/mcp"
        session = await initialize(http, url, {**ACCEPT, "Authorization": f"Bearer {first}"})
        own = await http.post(
            url, json=LIST, headers=with_session(session, {**ACCEPT, "Authorization": f"Bearer {first}"})
        )
        other = await http.post(
            url, json=LIST, headers=with_session(session, {**ACCEPT, "Authorization": f"Bearer {second}"})
        )
    assert own.status_code == 200
    assert other.status_code == 403 and "belongs to another caller" in other.json()["error"]["message"]


@pytest.mark.node
async def test_one_clients_tokens_without_sub_are_one_caller(jwt_gateway: str, idp: IdP) -> None:
    first, second = (idp.token(aud="mcp", sub=None) for _ in range(2))  # both carry the same client_id
    async with httpx2.AsyncClient(timeout=10) as http:
        url = jwt_gateway + "/mcp"
        session = await initialize(http, url, {**ACCEPT, "Authorization": f"Bearer {first}"})
        renewed = await http.post(
            url, json=LIST, headers=with_session(session, {**ACCEPT, "Authorization": f"Bearer {second}"})
        )
    assert renewed.status_code == 200, "a client's renewed token keeps its session"


async def test_list_results_carry_a_ttl_and_discover_advertises_list_changed(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    with gateway(echo_config(upstream_url)) as url:
        async with mcp_client(url + "/mcp", mode=MODERN) as client:
            listed = await client.list_tools()
        async with httpx2.AsyncClient(timeout=10) as http:
            headers = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"}
            meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}
            raw = (await http.post(url + "/mcp", json=body, headers=headers)).json()["result"]
    assert listed.tools and raw["ttlMs"] == 300_000 and raw["cacheScope"] == "public"


async def test_a_listen_stream_gets_list_changed_on_reload_and_ends_cleanly_on_shutdown(
    tmp_path: Path, upstream_url: str
) -> None:
    port = free_port()
    (tmp_path / "echo.yaml").write_text((SPECS / "echo.yaml").read_text())
    raw = echo_config(upstream_url)
    raw["server"] = {"host": "127.0.0.1", "port": port, "reload_interval": "off"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    events: list[object] = []
    with serving_process(config, port) as (process, url):
        async with (
            mcp_client(url + "/mcp", mode=MODERN) as client,
            client.listen(tools_list_changed=True) as subscription,
        ):
            assert subscription.honored.tools_list_changed is True
            config.write_text(yaml.safe_dump({**raw, "upstreams": [{**raw["upstreams"][0], "exclude": ["getItem"]}]}))
            process.send_signal(signal.SIGHUP)
            with anyio.fail_after(10):
                async for event in subscription:
                    events.append(event)
                    if len(events) == 1:
                        assert "echo_get_item" not in {t.name for t in (await client.list_tools()).tools}
                        process.send_signal(signal.SIGTERM)
            # The loop ended without SubscriptionLost: the server closed the stream on purpose.
        process.wait(timeout=10)
    assert events == [ToolsListChanged()]


async def test_a_listen_stream_honors_only_tools_and_holds_no_call_open(upstream_url: str) -> None:
    with served_app(echo_config(upstream_url)) as (url, app):
        async with (
            mcp_client(url + "/mcp", mode=MODERN) as client,
            client.listen(tools_list_changed=True, prompts_list_changed=True) as subscription,
        ):
            assert subscription.honored.tools_list_changed is True
            assert not subscription.honored.prompts_list_changed
            assert app.sessions.stream_count == 1
            # A reload waits for calls in flight before closing the old gateway, never for a stream.
            assert app._serving.active == 0


async def test_a_rotated_gateway_serves_sessions_sealed_with_its_previous_key(
    gateway: GatewayFactory, upstream_url: str
) -> None:
    new_key = "the-next-session-key-of-at-least-32-bytes"
    with (
        gateway(sessions_config(upstream_url)) as old,
        gateway(sessions_config(upstream_url, key=new_key, previous_keys=[KEY])) as rotated,
        gateway(sessions_config(upstream_url, key=new_key)) as retired,
    ):
        async with httpx2.AsyncClient(timeout=10) as http:
            session = await initialize(http, old + "/mcp")
            served = await http.post(rotated + "/mcp", json=LIST, headers=with_session(session))
            refused = await http.post(retired + "/mcp", json=LIST, headers=with_session(session))
            fresh = await initialize(http, rotated + "/mcp")
            on_old = await http.post(old + "/mcp", json=LIST, headers=with_session(fresh))
    assert (served.status_code, refused.status_code) == (200, 404)
    assert on_old.status_code == 404, "new sessions are sealed with the new key only"
