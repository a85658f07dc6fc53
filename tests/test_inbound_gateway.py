"""Inbound auth end to end: the real gateway, a real identity provider, a recording upstream.

A request that fails authentication must never reach tool listing, tool
calling or the upstream: every refusal below is checked against the
upstream's record of hits.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from tests.support.bad_tokens import BAD_TOKENS, bad_tokens
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.idp import IdP
from tests.support.mcp import ACCEPT, INITIALIZE, mcp_client
from tests.support.upstream import RecordingUpstream

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

AUDIENCE = "mcp-gateway"
PUBLIC_URL = "https://gateway.example"  # what clients are told; the test talks to 127.0.0.1
CALL = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "echo_get_item", "arguments": {"itemId": "7"}},
}
LIST = {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}}


@pytest.fixture(scope="module")
def corpus(idp_server: IdP) -> dict[str, str]:
    return bad_tokens(idp_server, AUDIENCE)


def with_auth(upstream_url: str, inbound_auth: dict[str, Any]) -> dict[str, Any]:
    raw = echo_config(upstream_url)
    raw["groups"][0]["inbound_auth"] = inbound_auth
    raw["server"] = {"public_url": PUBLIC_URL}
    return raw


def jwt_auth(idp: IdP, **settings: Any) -> dict[str, Any]:
    return {"strategy": "jwt", "jwt": {"issuer": idp.issuer, "audience": AUDIENCE, **settings}}


def bearer(token: str) -> dict[str, str]:
    return {**ACCEPT, "Authorization": f"Bearer {token}"}


async def open_session(http: httpx2.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    """Initialize with `headers`; return them plus the session id."""
    opened = await http.post("/mcp", json=INITIALIZE, headers=headers)
    assert opened.status_code == 200, opened.text
    return {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"]}


def assert_challenge(response: httpx2.Response, error: str = "invalid_token") -> None:
    """RFC 6750 / RFC 9728: the challenge points at the protected resource metadata."""
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert f'error="{error}"' in challenge
    assert response.json()["error"] == error


@pytest.mark.node
async def test_official_client_with_a_token_from_the_idp_on_both_protocols(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    token = idp.token(aud=AUDIENCE, sub="alice")
    with gateway(with_auth(upstream_url, jwt_auth(idp))) as url:  # keys found through OIDC discovery
        for mode in ("legacy", "auto"):
            async with mcp_client(url + "/mcp", mode=mode, headers={"Authorization": f"Bearer {token}"}) as client:
                result = await client.call_tool("echo_get_item", {"itemId": "7"})
            assert result.is_error is False
    assert [r.path for r in upstream.requests] == ["/items/7", "/items/7"]
    assert all(r.header("authorization") is None for r in upstream.requests), "the caller's token never goes upstream"
    fetched = [r["path"] for r in idp.requests() if r["path"] != "/token"]
    assert fetched == ["/.well-known/openid-configuration", "/jwks"]  # once, for both sessions


@pytest.mark.node
@pytest.mark.parametrize("name", BAD_TOKENS)
async def test_bad_token_is_401_and_never_reaches_the_upstream(
    gateway: GatewayFactory,
    upstream: RecordingUpstream,
    upstream_url: str,
    idp: IdP,
    corpus: dict[str, str],
    name: str,
) -> None:
    good = bearer(idp.token(aud=AUDIENCE))
    bad = bearer(corpus[name])
    with gateway(with_auth(upstream_url, jwt_auth(idp, jwks_url=idp.jwks_url))) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            session = await open_session(http, good)
            refused = [
                await http.post("/mcp", json=INITIALIZE, headers=bad),
                await http.post("/mcp", json=CALL, headers={**bad, "Mcp-Session-Id": session["Mcp-Session-Id"]}),
                await http.post("/mcp", json=LIST, headers={**bad, "Mcp-Session-Id": session["Mcp-Session-Id"]}),
            ]
            for response in refused:
                assert response.status_code == 401, response.text
                assert_challenge(response)
                assert corpus[name][:40] not in response.text
            assert upstream.requests == []
            assert (await http.post("/mcp", json=CALL, headers=session)).status_code == 200  # the control
    assert len(upstream.requests) == 1


@pytest.mark.node
async def test_missing_token_gets_the_challenge_and_metadata_is_served(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    with gateway(with_auth(upstream_url, jwt_auth(idp))) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            missing = await http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
            assert missing.status_code == 401
            assert_challenge(missing)
            for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
                metadata = (await http.get(path)).json()
                assert metadata["resource"] == f"{PUBLIC_URL}/mcp"
                assert metadata["authorization_servers"] == [idp.issuer]
    assert upstream.requests == []


@pytest.mark.node
async def test_missing_scope_is_403_insufficient_scope(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    narrow = bearer(idp.token(aud=AUDIENCE, scope="mcp:read"))
    wide = bearer(idp.token(aud=AUDIENCE, scope="mcp:read mcp:call"))
    with gateway(with_auth(upstream_url, jwt_auth(idp, required_scopes=["mcp:read", "mcp:call"]))) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            response = await http.post("/mcp", json=INITIALIZE, headers=narrow)
            assert response.status_code == 403
            assert_challenge(response, error="insufficient_scope")
            assert 'scope="mcp:read mcp:call"' in response.headers["www-authenticate"]
            session = await open_session(http, wide)
            assert (await http.post("/mcp", json=CALL, headers=session)).status_code == 200
            metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert metadata["scopes_supported"] == ["mcp:read", "mcp:call"]
    assert len(upstream.requests) == 1


@pytest.mark.node
async def test_rotated_signing_key_is_accepted_without_restart(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    old = idp.token(aud=AUDIENCE)
    config = with_auth(upstream_url, jwt_auth(idp, jwks_url=idp.jwks_url, min_refresh_interval="1s"))
    with gateway(config) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            await open_session(http, bearer(old))
            idp.rotate_key()
            new = idp.token(aud=AUDIENCE)
            # Within the refetch interval the new kid is unknown: rate limiting at work.
            assert (await http.post("/mcp", json=INITIALIZE, headers=bearer(new))).status_code == 401
            await anyio.sleep(1.1)
            session = await open_session(http, bearer(new))
            assert (await http.post("/mcp", json=CALL, headers=session)).status_code == 200
            await open_session(http, bearer(old))  # the old key is still published, so still accepted
    assert len(idp.requests("/jwks")) == 2
    assert len(upstream.requests) == 1


@pytest.mark.node
async def test_identity_provider_down_before_keys_are_known_is_503(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    token = bearer(idp.token(aud=AUDIENCE))
    with gateway(with_auth(upstream_url, jwt_auth(idp))) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            with idp.outage():
                response = await http.post("/mcp", json=INITIALIZE, headers=token)
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert "signing keys could not be fetched" in response.json()["error_description"]
    assert upstream.requests == []


@pytest.mark.node
async def test_session_of_one_identity_refuses_another_identity(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    alice = bearer(idp.token(aud=AUDIENCE, sub="alice"))
    bob = bearer(idp.token(aud=AUDIENCE, sub="bob"))
    with gateway(with_auth(upstream_url, jwt_auth(idp))) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            session = await open_session(http, alice)
            hijack = {**bob, "Mcp-Session-Id": session["Mcp-Session-Id"]}
            for message in (CALL, LIST):
                assert (await http.post("/mcp", json=message, headers=hijack)).status_code == 403
            assert upstream.requests == []
            # Alice's own second token (same subject) keeps using her session.
            again = {**bearer(idp.token(aud=AUDIENCE, sub="alice")), "Mcp-Session-Id": session["Mcp-Session-Id"]}
            assert (await http.post("/mcp", json=CALL, headers=again)).status_code == 200
    assert len(upstream.requests) == 1


@pytest.mark.node
async def test_introspection_against_the_idp(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str, idp: IdP
) -> None:
    introspection = {
        "endpoint": idp.introspection_url,
        "client_id": "gateway",
        "client_secret": "${INTROSPECTION_SECRET}",
        "issuer": idp.issuer,
        "cache_ttl": "0s",
    }
    idp.configure(clients={"gateway": "introspection-secret", "test-client": "test-secret"})
    token = idp.token(sub="carol", scope="read")
    revoked = idp.token(sub="dave")
    idp.revoke(revoked)
    raw = with_auth(upstream_url, {"strategy": "introspection", "introspection": introspection})
    with gateway(raw, env={"INTROSPECTION_SECRET": "introspection-secret"}) as url:
        async with mcp_client(url + "/mcp", headers={"Authorization": f"Bearer {token}"}) as client:
            assert (await client.call_tool("echo_get_item", {"itemId": "7"})).is_error is False
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            for bad in (revoked, "never-issued-by-the-idp"):
                response = await http.post("/mcp", json=INITIALIZE, headers=bearer(bad))
                assert response.status_code == 401
                assert_challenge(response)
            with idp.outage():
                assert (await http.post("/mcp", json=INITIALIZE, headers=bearer(token))).status_code == 503
            metadata = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert metadata["authorization_servers"] == [idp.issuer]
    assert len(upstream.requests) == 1
    assert {r["auth_method"] for r in idp.requests("/introspect")} == {"client_secret_basic"}


async def test_apikey_through_the_gateway(
    gateway: GatewayFactory, upstream: RecordingUpstream, upstream_url: str
) -> None:
    raw = with_auth(
        upstream_url, {"strategy": "apikey", "apikey": {"values": {"ci": "${CI_KEY}", "ops": "${OPS_KEY}"}}}
    )
    with gateway(raw, env={"CI_KEY": "ci-key-0123456789", "OPS_KEY": "ops-key-0123456789"}) as url:
        async with mcp_client(url + "/mcp", headers={"X-API-Key": "ops-key-0123456789"}) as client:
            assert (await client.call_tool("echo_get_item", {"itemId": "7"})).is_error is False
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            for headers in ({}, {"X-API-Key": "ops-key-012345678"}, {"Authorization": "Bearer ops-key-0123456789"}):
                response = await http.post("/mcp", json=INITIALIZE, headers={**ACCEPT, **headers})
                assert response.status_code == 401
                assert "resource_metadata" not in response.headers["www-authenticate"]
                assert "ops-key" not in response.text
            assert (await http.get("/.well-known/oauth-protected-resource/mcp")).status_code == 404
    assert len(upstream.requests) == 1
    assert upstream.last.header("x-api-key") is None


@pytest.mark.node
@pytest.mark.parametrize(("endpoints", "root"), [(["/admin/mcp", "/mcp"], "/mcp"), (["/a/mcp", "/b/mcp"], None)])
async def test_root_metadata_with_several_protected_groups(
    gateway: GatewayFactory, upstream_url: str, idp: IdP, endpoints: list[str], root: str | None
) -> None:
    raw = with_auth(upstream_url, jwt_auth(idp))
    first = raw["groups"][0]
    raw["groups"] = [{**first, "name": f"g{i}", "endpoint": endpoint} for i, endpoint in enumerate(endpoints)]
    with gateway(raw) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=10) as http:
            for endpoint in endpoints:
                metadata = (await http.get(f"/.well-known/oauth-protected-resource{endpoint}")).json()
                assert metadata["resource"] == f"{PUBLIC_URL}{endpoint}"
            response = await http.get("/.well-known/oauth-protected-resource")
            if root is None:
                assert response.status_code == 404
            else:
                assert response.status_code == 200
                assert response.json()["resource"] == f"{PUBLIC_URL}{root}"
