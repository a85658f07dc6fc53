"""The introspection strategy (RFC 7662) against the real identity provider's /introspect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.datastructures import Headers

from mcp_anything.config import ConfigError, parse_config
from mcp_anything.inbound import AuthError, InboundRequest
from mcp_anything.inbound.introspection import IntrospectionAuthenticator
from tests.support.clock import FakeClock
from tests.support.idp import IdP
from tests.support.inbound import authenticator as build
from tests.support.inbound import raw_config

CLIENT_ID = "gateway"
CLIENT_SECRET = "introspection s3cret/with:odd&chars"

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node]


@pytest.fixture(autouse=True)
def _reset(idp: IdP) -> None:
    # Only the gateway may introspect; the test's own token requests use test-client.
    idp.configure(clients={CLIENT_ID: CLIENT_SECRET, "test-client": "test-secret"})


def make(idp: IdP, clock: FakeClock | None = None, **settings: Any) -> IntrospectionAuthenticator:
    block = {
        "endpoint": idp.introspection_url,
        "client_id": CLIENT_ID,
        "client_secret": "${SECRET}",
        **settings,
    }
    authenticator = build({"strategy": "introspection", "introspection": block}, env={"SECRET": CLIENT_SECRET})
    assert isinstance(authenticator, IntrospectionAuthenticator)
    if clock is None:
        return authenticator
    return IntrospectionAuthenticator(authenticator._config, clock=clock.monotonic, wall_clock=clock.time)


def bearer(token: str) -> InboundRequest:
    return InboundRequest("POST", "/mcp", Headers({"authorization": f"Bearer {token}"}))


async def refused(auth: IntrospectionAuthenticator, token: str) -> AuthError:
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(bearer(token))
    return caught.value


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_active_token_gives_identity(idp: IdP, auth_method: str) -> None:
    auth = make(idp, auth_method=auth_method)
    try:
        identity = await auth.authenticate(bearer(idp.token(scope="read write", sub="alice", team="a")))
    finally:
        await auth.aclose()
    assert (identity.strategy, identity.subject, identity.scopes) == ("introspection", "alice", {"read", "write"})
    assert identity.claims["team"] == "a"
    [call] = idp.requests("/introspect")
    assert call["auth_method"] == auth_method
    assert call["client_id"] == CLIENT_ID
    assert call["form"]["token_type_hint"] == "access_token"


async def test_inactive_unknown_and_revoked_tokens_are_401(idp: IdP) -> None:
    auth = make(idp, cache_ttl="0s")
    token = idp.token()
    try:
        await auth.authenticate(bearer(token))
        idp.revoke(token)
        assert (await refused(auth, token)).description == "token is not active"
        assert (await refused(auth, "never-issued")).status == 401
    finally:
        await auth.aclose()


async def test_active_results_are_cached_then_asked_again(idp: IdP) -> None:
    auth = make(idp, cache_ttl="60s")
    token = idp.token()
    try:
        for _ in range(5):
            await auth.authenticate(bearer(token))
        assert len(idp.requests("/introspect")) == 1
        idp.revoke(token)
        await auth.authenticate(bearer(token))  # still cached: that is what cache_ttl trades
        auth._cache.clear()
        await refused(auth, token)
    finally:
        await auth.aclose()


async def test_cache_never_outlives_the_token(idp: IdP) -> None:
    clock = FakeClock()
    auth = make(idp, clock, cache_ttl="1h")
    token = idp.token(exp=int(clock.time()) + 2)
    try:
        await auth.authenticate(bearer(token))
        await auth.authenticate(bearer(token))
        assert len(idp.requests("/introspect")) == 1
        clock.advance(2.1)
        assert (await refused(auth, token)).status == 401
        assert len(idp.requests("/introspect")) == 2
    finally:
        await auth.aclose()


async def test_inactive_results_are_not_cached(idp: IdP) -> None:
    auth = make(idp)
    try:
        for _ in range(3):
            await refused(auth, "never-issued")
        assert len(idp.requests("/introspect")) == 3
    finally:
        await auth.aclose()


async def test_concurrent_requests_share_one_introspection(idp: IdP) -> None:
    auth = make(idp)
    token = idp.token(sub="bob")
    idp.configure(faults={"/introspect": {"delay_ms": 200}})
    try:
        identities = await asyncio.gather(*(auth.authenticate(bearer(token)) for _ in range(20)))
    finally:
        await auth.aclose()
    assert {i.subject for i in identities} == {"bob"}
    assert len(idp.requests("/introspect")) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 503, "body": {"error": "temporarily_unavailable"}},
        {"status": 200, "body": ["not", "an", "object"]},
    ],
)
async def test_endpoint_failure_is_503(idp: IdP, fault: dict[str, Any]) -> None:
    auth = make(idp)
    idp.configure(faults={"/introspect": fault})
    try:
        error = await refused(auth, idp.token())
    finally:
        await auth.aclose()
    assert (error.status, error.description) == (503, "the token introspection endpoint is unavailable")


async def test_unreachable_endpoint_is_503(idp: IdP) -> None:
    auth = make(idp)
    token = idp.token()
    try:
        with idp.outage():
            assert (await refused(auth, token)).status == 503
    finally:
        await auth.aclose()


async def test_slow_endpoint_times_out_with_503(idp: IdP) -> None:
    auth = make(idp, timeout="200ms")
    idp.configure(faults={"/introspect": {"delay_ms": 1000}})
    try:
        assert (await refused(auth, idp.token())).status == 503
    finally:
        await auth.aclose()


async def test_wrong_client_secret_is_503_not_401(idp: IdP, caplog: pytest.LogCaptureFixture) -> None:
    idp.configure(clients={CLIENT_ID: "another secret"})
    auth = make(idp)
    try:
        error = await refused(auth, idp.token(client_id=CLIENT_ID, client_secret="another secret"))
    finally:
        await auth.aclose()
    assert error.status == 503
    assert "HTTP 401" in caplog.text
    assert CLIENT_SECRET not in caplog.text


async def test_required_scopes_403(idp: IdP) -> None:
    auth = make(idp, required_scopes=["mcp"])
    try:
        await auth.authenticate(bearer(idp.token(scope="mcp other")))
        error = await refused(auth, idp.token(scope="other"))
    finally:
        await auth.aclose()
    assert (error.status, error.error, error.scope) == (403, "insufficient_scope", "mcp")


async def test_issuer_is_advertised_and_checked(idp: IdP) -> None:
    auth = make(idp, issuer=idp.issuer)
    try:
        assert auth.authorization_servers == [idp.issuer]
        await auth.authenticate(bearer(idp.token()))
        error = await refused(auth, idp.token(iss="https://elsewhere.example"))
    finally:
        await auth.aclose()
    assert error.description == "token issuer is not the configured issuer"
    assert make(idp).authorization_servers == []


def test_endpoint_must_be_an_http_url() -> None:
    block = {"endpoint": "auth.example.com/introspect", "client_id": "c", "client_secret": "s"}
    with pytest.raises(ConfigError, match=r"introspection\.endpoint: expected an http\(s\) URL"):
        parse_config(raw_config({"strategy": "introspection", "introspection": block}))


async def test_large_introspection_response_is_read_whole(idp: IdP) -> None:
    auth = make(idp)
    idp.configure(faults={"/introspect": {"status": 200, "body": {"active": True, "sub": "eve", "x": "A" * 200_000}}})
    try:
        assert (await auth.authenticate(bearer("any"))).subject == "eve"
    finally:
        await auth.aclose()
