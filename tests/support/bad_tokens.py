"""The bad-token corpus: every token here must be refused by the jwt strategy.

Tokens that are well-signed but wrong (expired, wrong issuer, ...) come from the
real identity provider; forgeries are built here by hand, the way an attacker
would build them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import JWKRegistry, RSAKey

from tests.support.idp import IdP

BAD_TOKENS = [
    "alg none",
    "HS256 keyed with the RSA public key",
    "expired",
    "nbf in the future",
    "wrong iss",
    "wrong aud",
    "unknown kid",
    "tampered payload",
    "truncated",
    "not base64",
    "100 KB token",
    "header only",
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return result


def bad_tokens(idp: IdP, audience: str) -> dict[str, str]:
    """name -> token; `audience` is what the gateway under test expects."""
    now = int(time.time())
    good = idp.token(aud=audience)
    header_segment, payload_segment, _ = good.split(".")
    payload = decode_part(good, 1)
    kid = decode_part(good, 0)["kid"]

    none_header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())

    # The classic key-confusion forgery: HMAC keyed with the issuer's public key (PEM).
    public_jwk = next(key for key in idp.jwks()["keys"] if key["kid"] == kid)
    public_pem = JWKRegistry.import_key(public_jwk).as_pem(private=False)
    hs_signing_input = f"{b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}.{payload_segment}"
    hs_signature = b64url(hmac.new(public_pem, hs_signing_input.encode(), hashlib.sha256).digest())

    stranger = RSAKey.generate_key(2048, parameters={"kid": "not-published-by-the-issuer"})
    unknown_kid = jwt.encode({"alg": "RS256", "kid": "not-published-by-the-issuer"}, payload, stranger)

    tampered_payload = b64url(json.dumps({**payload, "sub": "admin", "scope": "admin"}).encode())

    corpus = {
        "alg none": f"{none_header}.{payload_segment}.",
        "HS256 keyed with the RSA public key": f"{hs_signing_input}.{hs_signature}",
        "expired": idp.token(aud=audience, iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "nbf in the future": idp.token(aud=audience, nbf=now + 3600),
        "wrong iss": idp.token(aud=audience, iss="https://attacker.example"),
        "wrong aud": idp.token(aud="some-other-service"),
        "unknown kid": unknown_kid,
        "tampered payload": f"{header_segment}.{tampered_payload}.{good.split('.')[2]}",
        "truncated": good[: len(good) - 12],
        "not base64": "!!!.@@@.###",
        "100 KB token": idp.token(aud=audience, padding="x" * 100_000),
        "header only": header_segment,
    }
    assert list(corpus) == BAD_TOKENS
    return corpus
