"""Auth-related metrics end to end, with oauth2-mock-server as the real identity provider and token endpoint:
inbound auth failures by reason, JWKS fetches, introspection and client-credentials fetches and cache hits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import INITIALIZE, mcp_client
from tests.support.metrics import Scrape, scrape

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

AUDIENCE = "mcp-gateway"
FETCHES = "mcp_anything_token_fetches_total"
HITS = "mcp_anything_token_cache_hits_total"
AUTH_FAILURES = "mcp_anything_auth_failures_total"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdP]:
    with IdP() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(idp: IdP) -> None:
    idp.reset()


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def with_inbound(upstream_url: str, inbound_auth: dict[str, Any]) -> dict[str, Any]:
    raw = echo_config(upstream_url)
    raw["groups"][0]["inbound_auth"] = inbound_auth
    return raw


async def test_jwt_failures_by_reason_and_jwks_fetches(gateway: GatewayFactory, upstream_url: str, idp: IdP) -> None:
    auth = {"strategy": "jwt", "jwt": {"issuer": idp.issuer, "jwks_url": idp.jwks_url, "audience": AUDIENCE}}
    token = idp.token(sub="alice", aud=AUDIENCE)
    with gateway(with_inbound(upstream_url, auth)) as url:
        before = await scrape(url)
        async with mcp_client(url + "/mcp", headers={"Authorization": f"Bearer {token}"}) as client:
            assert (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error is False
        async with httpx2.AsyncClient(base_url=url) as http:
            accept = {"Accept": "application/json, text/event-stream"}
            assert (await http.post("/mcp", json=INITIALIZE, headers=accept)).status_code == 401
            forged = {**accept, "Authorization": "Bearer not.a.jwt"}
            assert (await http.post("/mcp", json=INITIALIZE, headers=forged)).status_code == 401
        after = await scrape(url)
    assert delta(before, after, AUTH_FAILURES, group="default", reason="invalid_token") == 2
    assert delta(before, after, FETCHES, kind="jwks", endpoint=idp.jwks_url, outcome="ok") == 1


async def test_introspection_fetches_then_cache_hits(gateway: GatewayFactory, upstream_url: str, idp: IdP) -> None:
    idp.configure(clients={"gateway": "introspection-secret", "test-client": "test-secret"})
    introspection = {
        "endpoint": idp.introspection_url,
        "client_id": "gateway",
        "client_secret": "${SECRET}",
        "cache_ttl": "60s",
    }
    token = idp.token(sub="carol")
    raw = with_inbound(upstream_url, {"strategy": "introspection", "introspection": introspection})
    with gateway(raw, env={"SECRET": "introspection-secret"}) as url:
        before = await scrape(url)
        async with mcp_client(url + "/mcp", headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(3):
                assert (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error is False
        after = await scrape(url)
    labels = {"kind": "introspection", "endpoint": idp.introspection_url}
    assert delta(before, after, FETCHES, **labels, outcome="ok") == 1
    # initialize, initialized, three calls, the event stream and DELETE each authenticate.
    assert delta(before, after, HITS, **labels) >= 4


async def test_client_credentials_fetch_then_cache_hits(gateway: GatewayFactory, upstream_url: str, idp: IdP) -> None:
    idp.configure(clients={"gateway": "upstream-secret"})
    outbound = {
        "strategy": "oauth2_client_credentials",
        "oauth2_client_credentials": {
            "token_url": idp.token_url,
            "client_id": "gateway",
            "client_secret": "${SECRET}",
        },
    }
    with gateway(echo_config(upstream_url, outbound_auth=outbound), env={"SECRET": "upstream-secret"}) as url:
        before = await scrape(url)
        async with mcp_client(url + "/mcp") as client:
            for _ in range(4):
                assert (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error is False
        after = await scrape(url)
    labels = {"kind": "client_credentials", "endpoint": idp.token_url}
    assert delta(before, after, FETCHES, **labels, outcome="ok") == 1
    assert delta(before, after, HITS, **labels) == 3
