"""How long JWKS keys are trusted: refetched after `jwks_cache_ttl` (or a shorter max-age), withdrawn keys
refused from then on, tokens remembered under them forgotten, and the last good keys kept through an outage.

The clock is moved by hand; the keys come from oauth2-mock-server, or, where the response's
`Cache-Control` matters, from a small JWKS server of the test's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from mcp_anything.config import JwtConfig
from mcp_anything.inbound import AuthError, InboundRequest
from mcp_anything.inbound.jwt import JwtAuthenticator
from tests.support.clock import FakeClock
from tests.support.idp import IdP
from tests.support.servers import ServerThread

pytestmark = pytest.mark.anyio

AUDIENCE = "mcp-gateway"


def bearer(token: str) -> InboundRequest:
    return InboundRequest("POST", "/mcp", Headers({"authorization": f"Bearer {token}"}))


def authenticator(clock: FakeClock, issuer: str, jwks_url: str, **settings: Any) -> JwtAuthenticator:
    config = JwtConfig(issuer=issuer, jwks_url=jwks_url, audience=AUDIENCE, **settings)
    return JwtAuthenticator(config, clock=clock.monotonic, wall_clock=clock.time)


@pytest.mark.slow
@pytest.mark.node
async def test_a_withdrawn_key_and_the_tokens_remembered_under_it_are_refused_after_the_ttl(idp: IdP) -> None:
    clock = FakeClock()
    withdrawn = idp.rotate_key()
    old = idp.token(aud=AUDIENCE, sub="old")
    idp.rotate_key()
    new = idp.token(aud=AUDIENCE, sub="new")
    remaining = [key for key in idp.jwks()["keys"] if key["kid"] != withdrawn]
    idp.reset()  # forget the fetch just made
    auth = authenticator(clock, idp.issuer, idp.jwks_url, jwks_cache_ttl="60s")
    try:
        assert (await auth.authenticate(bearer(old))).subject == "old"  # verified, and remembered
        await auth.authenticate(bearer(new))
        idp.fail("/jwks", 200, {"keys": remaining})  # the issuer withdraws the old key

        clock.advance(59)
        assert (await auth.authenticate(bearer(old))).subject == "old"  # the keys are still fresh
        assert len(idp.requests("/jwks")) == 1

        clock.advance(2)
        with pytest.raises(AuthError, match="unknown key"):
            await auth.authenticate(bearer(old))
        assert (await auth.authenticate(bearer(new))).subject == "new"
        assert len(idp.requests("/jwks")) == 2  # one refetch, then the keys are fresh again
    finally:
        await auth.aclose()


@pytest.mark.slow
@pytest.mark.node
async def test_an_outage_keeps_the_last_good_keys_and_retries_after_the_minimum_interval(idp: IdP) -> None:
    clock = FakeClock()
    token = idp.token(aud=AUDIENCE)
    auth = authenticator(clock, idp.issuer, idp.jwks_url, jwks_cache_ttl="60s", min_refresh_interval="30s")
    try:
        await auth.authenticate(bearer(token))
        clock.advance(61)
        with idp.outage():
            await auth.authenticate(bearer(token))  # the refetch fails; the keys held still verify
            clock.advance(10)
            await auth.authenticate(bearer(token))  # no second attempt within min_refresh_interval
        assert len(idp.requests("/jwks")) == 1  # the failed attempt never reached the endpoint
        clock.advance(25)
        await auth.authenticate(bearer(token))
        assert len(idp.requests("/jwks")) == 2
    finally:
        await auth.aclose()


class JwksServer:
    """Serves `keys` as a JWKS with `cache_control`, counting fetches."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
        self.cache_control = ""
        self.fetches = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.fetches += 1
        body = orjson.dumps(KeySet([self.key]).as_dict(private=False))
        headers = [(b"content-type", b"application/json")]
        if self.cache_control:
            headers.append((b"cache-control", self.cache_control.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def token(self, issuer: str) -> str:
        claims = {"iss": issuer, "aud": AUDIENCE, "sub": "alice", "exp": int(time.time()) + 3600}
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)


@pytest.fixture
def jwks() -> Iterator[tuple[JwksServer, str]]:
    server = JwksServer()
    with ServerThread(server) as running:
        yield server, running.url + "/jwks"


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [
        ("", 300),  # jwks_cache_ttl
        ("public, max-age=120", 120),  # shorter: honoured
        ("max-age=86400", 300),  # longer: the ttl still bounds it
        ("max-age=5", 30),  # never sooner than min_refresh_interval
        ("no-store", 30),
    ],
)
async def test_keys_are_refetched_after_the_ttl_or_a_shorter_max_age(
    jwks: tuple[JwksServer, str], cache_control: str, fresh_for: float
) -> None:
    server, url = jwks
    server.cache_control = cache_control
    clock = FakeClock()
    issuer = "https://issuer.example"
    token = server.token(issuer)
    auth = authenticator(clock, issuer, url, jwks_cache_ttl="300s", min_refresh_interval="30s")
    try:
        await auth.authenticate(bearer(token))
        clock.advance(fresh_for - 1)
        await auth.authenticate(bearer(token))
        assert server.fetches == 1
        clock.advance(2)
        await auth.authenticate(bearer(token))
        assert server.fetches == 2
    finally:
        await auth.aclose()
