"""The jwt strategy against a real identity provider (oauth2-mock-server)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwk import RSAKey
from starlette.datastructures import Headers

from mcp_anything.config import ConfigError, parse_config
from mcp_anything.identity import Identity
from mcp_anything.inbound import AuthError, InboundRequest
from mcp_anything.inbound.jwt import JwtAuthenticator
from tests.support.bad_tokens import BAD_TOKENS, b64url, bad_tokens
from tests.support.clock import FakeClock
from tests.support.idp import IdP
from tests.support.inbound import authenticator as build
from tests.support.inbound import raw_config

AUDIENCE = "mcp-gateway"

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.node]


def make(idp: IdP, clock: FakeClock | None = None, **jwt: Any) -> JwtAuthenticator:
    settings = {"issuer": idp.issuer, "jwks_url": idp.jwks_url, "audience": AUDIENCE, **jwt}
    settings = {k: v for k, v in settings.items() if v is not None}
    authenticator = build({"strategy": "jwt", "jwt": settings})
    assert isinstance(authenticator, JwtAuthenticator)
    if clock is None:
        return authenticator
    return JwtAuthenticator(authenticator._config, clock=clock.monotonic, wall_clock=clock.time)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def auth(idp: IdP, clock: FakeClock) -> AsyncIterator[JwtAuthenticator]:
    authenticator = make(idp, clock)
    yield authenticator
    await authenticator.aclose()


def bearer(token: str) -> InboundRequest:
    return InboundRequest("POST", "/mcp", Headers({"authorization": f"Bearer {token}"}))


async def refused(auth: JwtAuthenticator, request: InboundRequest) -> AuthError:
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(request)
    return caught.value


async def test_token_from_the_idp_gives_identity_with_claims_and_scopes(idp: IdP, auth: JwtAuthenticator) -> None:
    identity = await auth.authenticate(bearer(idp.token(scope="read write", aud=AUDIENCE, sub="alice", team="a")))
    assert identity.strategy == "jwt"
    assert identity.subject == "alice"
    assert identity.scopes == {"read", "write"}
    assert identity.claims["team"] == "a"
    assert identity.claims["iss"] == idp.issuer
    assert auth.authorization_servers == [idp.issuer]


async def test_scp_list_gives_scopes(idp: IdP, auth: JwtAuthenticator) -> None:
    identity = await auth.authenticate(bearer(idp.token(aud=AUDIENCE, scp=["a", "b"])))
    assert identity.scopes == {"a", "b"}


async def test_audience_list_in_token_and_in_config(idp: IdP) -> None:
    auth = make(idp, audience=["other", AUDIENCE])
    try:
        await auth.authenticate(bearer(idp.token(aud=["x", AUDIENCE])))
        assert "audience" in (await refused(auth, bearer(idp.token(aud=["x", "y"])))).description
    finally:
        await auth.aclose()


async def test_oidc_discovery_finds_the_jwks(idp: IdP) -> None:
    auth = make(idp, jwks_url=None)
    try:
        identity = await auth.authenticate(bearer(idp.token(aud=AUDIENCE)))
        assert identity.subject == "test-client"
        assert [r["path"] for r in idp.requests()] == ["/token", "/.well-known/openid-configuration", "/jwks"]
    finally:
        await auth.aclose()


@pytest.fixture(scope="module")
def corpus(idp_server: IdP) -> dict[str, str]:
    return bad_tokens(idp_server, AUDIENCE)


@pytest.mark.parametrize("name", BAD_TOKENS)
async def test_bad_token_is_refused_with_401(
    idp: IdP, auth: JwtAuthenticator, corpus: dict[str, str], name: str
) -> None:
    await auth.authenticate(bearer(idp.token(aud=AUDIENCE)))  # keys fetched: an unknown kid is a real miss
    error = await refused(auth, bearer(corpus[name]))
    assert (error.status, error.error) == (401, "invalid_token")
    assert corpus[name] not in error.description


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing bearer token"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "Bearer <token>"),
        ({"authorization": "Bearer "}, "Bearer <token>"),
        ({"x-access-token": "whatever"}, "missing bearer token"),
    ],
)
async def test_token_only_from_authorization_bearer(
    auth: JwtAuthenticator, headers: dict[str, str], message: str
) -> None:
    error = await refused(auth, InboundRequest("POST", "/mcp", Headers(headers)))
    assert message in error.description


async def test_scheme_is_case_insensitive(idp: IdP, auth: JwtAuthenticator) -> None:
    request = InboundRequest("POST", "/mcp", Headers({"authorization": f"bearer {idp.token(aud=AUDIENCE)}"}))
    assert (await auth.authenticate(request)).subject == "test-client"


async def test_leeway_accepts_recent_expiry_and_refuses_older(idp: IdP) -> None:
    auth = make(idp, leeway="60s")
    now = int(time.time())
    try:
        await auth.authenticate(bearer(idp.token(aud=AUDIENCE, iat=now - 600, exp=now - 30)))
        error = await refused(auth, bearer(idp.token(aud=AUDIENCE, iat=now - 600, exp=now - 90)))
        assert error.description == "token has expired"
    finally:
        await auth.aclose()


async def test_required_claims(idp: IdP) -> None:
    auth = make(idp, required_claims=["exp", "sub", "tenant"])
    try:
        await auth.authenticate(bearer(idp.token(aud=AUDIENCE, tenant="t1")))
        assert "tenant" in (await refused(auth, bearer(idp.token(aud=AUDIENCE)))).description
        assert "exp" in (await refused(auth, bearer(idp.token(aud=AUDIENCE, exp=None, tenant="t1")))).description
    finally:
        await auth.aclose()


async def test_missing_required_scope_is_403_insufficient_scope(idp: IdP) -> None:
    auth = make(idp, required_scopes=["mcp:tools", "mcp:read"])
    try:
        await auth.authenticate(bearer(idp.token(aud=AUDIENCE, scope="mcp:read mcp:tools extra")))
        error = await refused(auth, bearer(idp.token(aud=AUDIENCE, scope="mcp:read")))
        assert (error.status, error.error, error.scope) == (403, "insufficient_scope", "mcp:tools mcp:read")
        assert "mcp:tools" in error.description
    finally:
        await auth.aclose()


async def test_only_configured_algorithms(idp: IdP) -> None:
    es_kid = idp.rotate_key("ES256")
    es_token = idp.token(aud=AUDIENCE)
    rs_only = make(idp)
    both = make(idp, algorithms=["RS256", "ES256"])
    try:
        assert "algorithm" in (await refused(rs_only, bearer(es_token))).description
        assert (await both.authenticate(bearer(es_token))).claims["aud"] == AUDIENCE
        assert es_kid in both._keys
    finally:
        idp.rotate_key("RS256")
        await rs_only.aclose()
        await both.aclose()


async def test_rotated_key_is_fetched_once_without_restart(idp: IdP) -> None:
    auth = make(idp, min_refresh_interval="0s")
    try:
        old = idp.token(aud=AUDIENCE)
        await auth.authenticate(bearer(old))
        idp.rotate_key()
        new = idp.token(aud=AUDIENCE)
        await auth.authenticate(bearer(new))
        await auth.authenticate(bearer(new))
        await auth.authenticate(bearer(old))
        assert len(idp.requests("/jwks")) == 2
    finally:
        await auth.aclose()


async def test_unknown_kids_refetch_single_flight_and_rate_limited(
    idp: IdP, auth: JwtAuthenticator, clock: FakeClock, corpus: dict[str, str]
) -> None:
    forged = corpus["unknown kid"]
    idp.reset()
    await auth.authenticate(bearer(idp.token(aud=AUDIENCE)))
    assert len(idp.requests("/jwks")) == 1
    clock.advance(60)  # past the refetch interval
    idp.configure(faults={"/jwks": {"delay_ms": 200}})
    errors = await asyncio.gather(*(refused(auth, bearer(forged)) for _ in range(20)))
    assert {e.description for e in errors} == {"token is signed with an unknown key"}
    for _ in range(20):
        await refused(auth, bearer(forged))
    assert len(idp.requests("/jwks")) == 2  # one refetch for 40 attempts


async def test_cached_keys_keep_working_when_jwks_is_down(
    idp: IdP, auth: JwtAuthenticator, clock: FakeClock, corpus: dict[str, str]
) -> None:
    await auth.authenticate(bearer(idp.token(aud=AUDIENCE)))
    token = idp.token(aud=AUDIENCE)
    forged = corpus["unknown kid"]
    clock.advance(60)
    with idp.outage():
        await auth.authenticate(bearer(token))
        error = await refused(auth, bearer(forged))  # the refetch it triggers fails
        assert error.status == 503
        await auth.authenticate(bearer(token))


async def test_jwks_unreachable_at_first_use_is_503_then_recovers(
    idp: IdP, auth: JwtAuthenticator, clock: FakeClock
) -> None:
    token = idp.token(aud=AUDIENCE)
    with idp.outage():
        error = await refused(auth, bearer(token))
    assert error.status == 503
    assert "signing keys could not be fetched" in error.description
    clock.advance(60)
    assert (await auth.authenticate(bearer(token))).subject == "test-client"


async def test_jwks_error_status_and_garbage_fail_closed(idp: IdP, auth: JwtAuthenticator, clock: FakeClock) -> None:
    token = idp.token(aud=AUDIENCE)
    idp.fail("/jwks", 500)
    assert (await refused(auth, bearer(token))).status == 503
    clock.advance(60)
    idp.fail("/jwks", 200, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})  # a symmetric key is never used
    assert (await refused(auth, bearer(token))).status == 503


async def test_discovery_with_wrong_issuer_is_refused(idp: IdP) -> None:
    auth = make(idp, jwks_url=None, issuer=idp.issuer + "/")
    try:
        token = idp.token(aud=AUDIENCE, iss=idp.issuer + "/")
        assert (await refused(auth, bearer(token))).status == 503
    finally:
        await auth.aclose()


def test_missing_audience_warns_loudly(idp: IdP, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mcp_anything.inbound.jwt"):
        make(idp, audience=None)
    assert "no `audience` configured" in caplog.text


@pytest.mark.parametrize(
    ("jwt", "problem"),
    [
        ({"issuer": "https://idp.example", "audience": []}, "audience cannot be empty"),
        ({"issuer": "https://idp.example", "audience": ""}, "audience cannot be empty"),
        ({"issuer": "authorino"}, "set jwks_url"),
        ({"issuer": "https://idp.example", "jwks_url": "idp.example/jwks"}, "expected an http(s) URL"),
        ({"issuer": "https://idp.example", "algorithms": []}, "at least one algorithm"),
        ({"issuer": "https://idp.example", "algorithms": ["HS256"]}, "unsupported algorithm(s) ['HS256']"),
        ({"issuer": "https://idp.example", "algorithms": ["RS256", "none"]}, "unsupported algorithm(s) ['none']"),
        ({"issuer": "https://idp.example", "audiance": "x"}, "unknown key"),
    ],
)
def test_config_problems(jwt: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        parse_config(raw_config({"strategy": "jwt", "jwt": jwt}))


def _segment(value: object) -> str:
    return b64url(json.dumps(value).encode())


MALFORMED = {
    "empty segments": "..",
    "four segments": "a.b.c.d",
    "JWE shaped": "a.b.c.d.e",
    "header is a list": f"{_segment(['RS256'])}.{_segment({})}.c2ln",
    "header without alg": f"{_segment({'kid': 'k'})}.{_segment({})}.c2ln",
    "alg is a list": f"{_segment({'alg': ['RS256']})}.{_segment({})}.c2ln",
    "kid is a number": f"{_segment({'alg': 'RS256', 'kid': 7})}.{_segment({})}.c2ln",
    "kid is an object": f"{_segment({'alg': 'RS256', 'kid': {'a': 1}})}.{_segment({})}.c2ln",
    "header not JSON": f"{b64url(b'{nope')}.{_segment({})}.c2ln",
    "non-ASCII": "\u00e9\u00e9.\u00e9\u00e9.\u00e9\u00e9",
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_tokens_are_401_never_a_crash(idp: IdP, auth: JwtAuthenticator, name: str) -> None:
    await auth.authenticate(bearer(idp.token(aud=AUDIENCE)))
    error = await refused(auth, bearer(MALFORMED[name]))
    assert (error.status, error.error) == (401, "invalid_token")


async def test_validly_signed_but_unacceptable_structure_is_401(idp: IdP, auth: JwtAuthenticator) -> None:
    """Signed by a key the authenticator trusts (put in its key cache here), so only the structure is wrong."""
    key = RSAKey.generate_key(2048, parameters={"kid": "test-owned"})
    both_algorithms = make(idp, algorithms=["RS256", "ES256"])
    for authenticator in (auth, both_algorithms):
        await authenticator.authenticate(bearer(idp.token(aud=AUDIENCE)))
        authenticator._keys["test-owned"] = RSAKey.import_key(key.as_dict(private=False))

    def signed(header: dict[str, object], payload: bytes) -> str:
        signing_input = f"{_segment(header)}.{b64url(payload)}".encode()
        signature = key.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
        return f"{signing_input.decode()}.{b64url(signature)}"

    claims = json.dumps({"iss": idp.issuer, "aud": AUDIENCE, "exp": int(time.time()) + 60}).encode()
    assert (await auth.authenticate(bearer(signed({"alg": "RS256", "kid": "test-owned"}, claims)))).claims
    array_payload = signed({"alg": "RS256", "kid": "test-owned"}, b"[1, 2]")
    assert (await refused(auth, bearer(array_payload))).description == "token payload is not a JSON object"
    # RFC 7515 section 4.1.11: a critical extension the recipient does not understand makes the JWS invalid.
    crit = signed({"alg": "RS256", "kid": "test-owned", "crit": ["x-unknown"], "x-unknown": 1}, claims)
    assert (await refused(auth, bearer(crit))).description == "token cannot be verified (unsupported_header)"
    # An ES256 token naming an RSA key.
    confused = signed({"alg": "ES256", "kid": "test-owned"}, claims)
    assert (await refused(both_algorithms, bearer(confused))).description.startswith("token cannot be verified")
    await both_algorithms.aclose()


async def test_a_verified_token_is_remembered_until_it_expires(
    idp: IdP, monkeypatch: pytest.MonkeyPatch, corpus: dict[str, str], clock: FakeClock
) -> None:
    auth = make(idp, clock, leeway="0s", min_refresh_interval="0s")
    verifications: list[str] = []
    verify = auth._verify

    async def counting(token: str) -> Identity:
        verifications.append(token)
        return await verify(token)

    monkeypatch.setattr(auth, "_verify", counting)
    token = idp.token(aud=AUDIENCE, exp=int(clock.time()) + 2)
    try:
        for _ in range(3):
            await auth.authenticate(bearer(token))
        assert len(verifications) == 1
        await refused(auth, bearer(corpus["unknown kid"]))  # refetches the JWKS: the same keys
        await auth.authenticate(bearer(token))
        assert len(verifications) == 2  # the forged token's; no key was withdrawn, so `token` stays verified
        clock.advance(2.1)
        assert (await refused(auth, bearer(token))).description == "token has expired"
    finally:
        await auth.aclose()


async def test_large_jwks_is_read_whole(idp: IdP, auth: JwtAuthenticator) -> None:
    """Hundreds of KB arrive in several chunks; keys of unknown types are skipped (RFC 7517 section 5)."""
    padding = [{"kty": "post-quantum", "kid": f"pq-{i}", "x": "A" * 1000} for i in range(300)]
    idp.fail("/jwks", 200, {"keys": [*padding, *idp.jwks()["keys"]]})
    assert (await auth.authenticate(bearer(idp.token(aud=AUDIENCE)))).subject == "test-client"
