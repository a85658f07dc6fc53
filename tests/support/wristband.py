"""Capability wristbands minted the way Authorino does for Kuadrant's MCP Gateway.

An ES256 JWT with `iss`, `sub`, `iat` and `exp`, whose `allowed-capabilities` claim is a
JSON-encoded string. The key pair is generated per test run; the gateway gets `PUBLIC_PEM`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from joserfc import jwk, jwt

SIGNING_KEY = jwk.ECKey.generate_key("P-256")
OTHER_KEY = jwk.ECKey.generate_key("P-256")
PUBLIC_PEM = SIGNING_KEY.as_pem(private=False).decode()
ISSUER = "https://authorino.example/default/mcp/wristband"


def mint(
    capabilities: Any = None,
    *,
    key: jwk.ECKey = SIGNING_KEY,
    lifetime: int = 300,
    omit: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "b06f9f0b1a3c",
        "iat": now,
        "exp": now + lifetime,
        "allowed-capabilities": json.dumps(capabilities if capabilities is not None else {"tools": {}}),
    }
    payload.update(claims)
    for name in omit:
        payload.pop(name)
    return jwt.encode({"alg": "ES256", "typ": "JWT", "kid": "wristband"}, payload, key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(alg: str, payload: dict[str, Any], secret: bytes = b"") -> str:
    """A token joserfc refuses to mint: `none`, or HS256 keyed with the public key (algorithm confusion)."""
    signing_input = f"{_b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()) if secret else ""
    return f"{signing_input}.{signature}"
