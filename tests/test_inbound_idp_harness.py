"""The test identity provider itself: what other tests rely on it to do."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from tests.support.idp import IdP, IdPError, urlopen

pytestmark = [pytest.mark.slow, pytest.mark.node]


def _part(token: str, index: int) -> dict[str, object]:
    segment = token.split(".")[index]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def _introspect(idp: IdP, token: str) -> dict[str, object]:
    request = urllib.request.Request(
        idp.introspection_url,
        data=f"token={token}&token_type_hint=access_token".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.load(response)
        return result


def test_token_carries_custom_claims_and_removes_none(idp: IdP) -> None:
    payload = _part(idp.token(scope="read write", aud="gw", role="admin", nbf=None), 1)
    assert payload["iss"] == idp.issuer
    assert payload["sub"] == "test-client"
    assert payload["scope"] == "read write"
    assert payload["aud"] == "gw"
    assert payload["role"] == "admin"
    assert "nbf" not in payload


def test_discovery_points_at_jwks(idp: IdP) -> None:
    with urlopen(idp.discovery_url, timeout=10) as response:
        document = json.load(response)
    assert document["issuer"] == idp.issuer
    assert document["jwks_uri"] == idp.jwks_url


def test_rotated_key_signs_every_new_token_and_old_key_stays_published(idp: IdP) -> None:
    old_kid = _part(idp.token(), 0)["kid"]
    new_kid = idp.rotate_key()
    assert {_part(idp.token(), 0)["kid"] for _ in range(3)} == {new_kid}
    assert {old_kid, new_kid} <= {key["kid"] for key in idp.jwks()["keys"]}


def test_introspection_knows_issued_revoked_and_foreign_tokens(idp: IdP) -> None:
    token = idp.token(scope="read")
    assert _introspect(idp, token)["active"] is True
    assert _introspect(idp, token)["scope"] == "read"
    assert _introspect(idp, "not-a-token-it-issued") == {"active": False}
    idp.revoke(token)
    assert _introspect(idp, token) == {"active": False}


def test_client_authentication_expiry_faults_and_request_log(idp: IdP) -> None:
    idp.configure(clients={"gateway": "s3cret"}, expires_in=120)
    with pytest.raises(IdPError) as refused:
        idp.token(client_id="gateway", client_secret="wrong")
    assert refused.value.status == 401
    assert refused.value.body["error"] == "invalid_client"
    payload = _part(idp.token(client_id="gateway", client_secret="s3cret"), 1)
    assert payload["exp"] - payload["iat"] == 120  # type: ignore[operator]

    idp.fail("/token", 400, {"error": "invalid_grant"})
    with pytest.raises(IdPError) as failed:
        idp.token(client_id="gateway", client_secret="s3cret")
    assert failed.value.body == {"error": "invalid_grant"}

    recorded = idp.requests("/token")
    assert [r["auth_method"] for r in recorded] == ["client_secret_basic"] * 3
    assert all("client_secret" not in r["form"] for r in recorded)


def test_outage_refuses_connections_until_up(idp: IdP) -> None:
    with idp.outage(), pytest.raises(urllib.error.URLError):
        urlopen(idp.jwks_url, timeout=5)
    assert idp.jwks()["keys"]
