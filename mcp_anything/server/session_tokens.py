"""Self-contained session ids: what a handshake-era session needs, sealed with AES-256-GCM.

Any replica or worker holding the same key can serve any session, since the id carries the
session rather than naming a row in one process's memory. A token is

    base64url( version(1) | key id(4) | nonce(12) | AES-GCM(payload) + tag(16) )

with the version byte and key id as associated data, so neither can be swapped. The payload is
compact JSON: protocol version, the client's info and capabilities (bounded), the identity binding
(the principal the session is bound to), the endpoint, issue time and expiry. The nonce is random
per token and doubles as the session's id for revocation: it is unique per issued token, public
already, and costs no extra bytes.

Keys: the first is the current one (new tokens), the rest are previous ones (still accepted), so a
key can be rotated without ending every session. Each key is derived with HKDF-SHA256 from a
configured secret of at least `MIN_SECRET_LENGTH` bytes; `random_secret()` gives a key for a
process that has none configured (its sessions are then local to it).

`open` never raises: anything that is not a valid, unexpired token for this endpoint under a
known key is `None`, so a forged id is refused exactly like an unknown session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mcp_anything.config import MIN_SESSION_KEY_BYTES

__all__ = [
    "MAX_CLIENT_BYTES",
    "MAX_TOKEN_CHARS",
    "MIN_SECRET_LENGTH",
    "ClientTooLarge",
    "SessionClaims",
    "SessionCodec",
    "random_secret",
]

MIN_SECRET_LENGTH: Final = MIN_SESSION_KEY_BYTES  # the config checks it at load; checked again here for direct use
MAX_CLIENT_BYTES: Final = 2048  # the client's info and capabilities, as compact JSON
# Comfortably above the largest token `issue` makes; longer input is refused before decoding.
MAX_TOKEN_CHARS: Final = 4096
DEFAULT_TTL: Final = 86400.0

_VERSION: Final = b"\x01"
_KEY_ID_BYTES: Final = 4
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_HEADER_BYTES: Final = 1 + _KEY_ID_BYTES + _NONCE_BYTES
_HKDF_INFO: Final = b"mcp-anything session token v1"


class ClientTooLarge(ValueError):
    """The client's info and capabilities exceed `MAX_CLIENT_BYTES`; the handshake should be refused."""


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What an open session token says. `id` is stable for the token's life: revoke by it."""

    id: str
    protocol_version: str
    principal: str
    endpoint: str
    client: Mapping[str, Any]
    issued_at: int
    expires_at: int


def random_secret() -> bytes:
    """A fresh key for a process with none configured; sessions sealed with it are local to that process."""
    return os.urandom(32)


def _derive(secret: bytes | str) -> tuple[bytes, AESGCM]:
    material = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(material) < MIN_SECRET_LENGTH:
        raise ValueError(f"a session key must be at least {MIN_SECRET_LENGTH} bytes, got {len(material)}")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(material)
    key_id = hashlib.sha256(b"key id\x00" + key).digest()[:_KEY_ID_BYTES]
    return key_id, AESGCM(key)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Issues and opens session tokens; built once per config, shared by every request."""

    def __init__(
        self,
        keys: Sequence[bytes | str],
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("at least one session key is needed")
        if ttl <= 0:
            raise ValueError(f"a session ttl must be positive, got {ttl}")
        derived = [_derive(key) for key in keys]
        self._current_id, self._current = derived[0]
        # A previous key equal to the current one (a rotation not yet finished) is harmless: first wins.
        self._by_id: dict[bytes, AESGCM] = {}
        for key_id, aead in derived:
            self._by_id.setdefault(key_id, aead)
        self._ttl = ttl
        self._clock = clock

    def issue(
        self,
        *,
        protocol_version: str,
        principal: str,
        endpoint: str,
        client: Mapping[str, Any] | None = None,
        ttl: float | None = None,
    ) -> str:
        """A new session token.

        Raises `ClientTooLarge` when `client` is over `MAX_CLIENT_BYTES` as JSON, and ValueError when the
        whole token would be over `MAX_TOKEN_CHARS` (with the largest client info, a principal over ~900 characters).
        """
        client_json = orjson.dumps(client or {})
        if len(client_json) > MAX_CLIENT_BYTES:
            raise ClientTooLarge(
                f"client info and capabilities are {len(client_json)} bytes of JSON; at most {MAX_CLIENT_BYTES}"
            )
        now = int(self._clock())
        expires = now + int(self._ttl if ttl is None else ttl)
        payload = b"".join(
            (
                b"[",
                orjson.dumps([protocol_version, principal, endpoint, now, expires])[1:-1],
                b",",
                client_json,
                b"]",
            )
        )
        header = _VERSION + self._current_id
        nonce = os.urandom(_NONCE_BYTES)
        token = _b64encode(header + nonce + self._current.encrypt(nonce, payload, header))
        if len(token) > MAX_TOKEN_CHARS:
            # `open` refuses such a token, so issuing it would make a session nobody can use.
            raise ValueError(f"a session token would be {len(token)} characters; at most {MAX_TOKEN_CHARS}")
        return token

    def open(self, token: object, endpoint: str) -> SessionClaims | None:
        """The token's claims, or None unless it is intact, unexpired, for `endpoint` and under a known key."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            return None
        try:
            raw = _b64decode(token)
        except (binascii.Error, ValueError):
            return None
        # Decoding skips characters outside the alphabet and ignores a last character's spare bits;
        # only the one canonical spelling of a token is accepted, so an altered id is never a valid one.
        if _b64encode(raw) != token:
            return None
        if len(raw) < _HEADER_BYTES + _TAG_BYTES or raw[:1] != _VERSION:
            return None
        aead = self._by_id.get(raw[1 : 1 + _KEY_ID_BYTES])
        if aead is None:
            return None
        nonce = raw[1 + _KEY_ID_BYTES : _HEADER_BYTES]
        try:
            payload = orjson.loads(aead.decrypt(nonce, raw[_HEADER_BYTES:], raw[: 1 + _KEY_ID_BYTES]))
        except (InvalidTag, orjson.JSONDecodeError):
            return None
        # Authenticated, so written by a holder of the key; the shape is still checked so that a
        # token from a different release is refused rather than misread.
        if not isinstance(payload, list) or len(payload) != 6:
            return None
        protocol_version, principal, token_endpoint, issued, expires, client = payload
        if not (
            isinstance(protocol_version, str)
            and isinstance(principal, str)
            and isinstance(token_endpoint, str)
            and type(issued) is int
            and type(expires) is int
            and isinstance(client, dict)
        ):
            return None
        if token_endpoint != endpoint or self._clock() >= expires:
            return None
        return SessionClaims(nonce.hex(), protocol_version, principal, token_endpoint, client, issued, expires)
