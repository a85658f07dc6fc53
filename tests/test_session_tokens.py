"""Session tokens: sealed, bound to an endpoint, expiring, rotatable, and never raising on bad input."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_anything.server.session_tokens import (
    MAX_CLIENT_BYTES,
    MAX_TOKEN_CHARS,
    MIN_SECRET_LENGTH,
    ClientTooLarge,
    SessionCodec,
    random_secret,
)
from tests.support.clock import ManualClock

SECRET = "correct horse battery staple, and then some more"
OTHER = "a different secret that is long enough to be accepted"
CLIENT = {"clientInfo": {"name": "claude", "version": "1.2"}, "capabilities": {"roots": {"listChanged": True}}}


def issue(codec: SessionCodec, endpoint: str = "/mcp") -> str:
    return codec.issue(
        protocol_version="2025-11-25", principal="jwt:https://idp.example|alice", endpoint=endpoint, client=CLIENT
    )


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def spell(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip_carries_every_claim() -> None:
    clock = ManualClock()
    codec = SessionCodec([SECRET], ttl=600, clock=clock)
    token = issue(codec)
    claims = codec.open(token, "/mcp")
    assert claims is not None
    assert claims.protocol_version == "2025-11-25"
    assert claims.principal == "jwt:https://idp.example|alice"
    assert claims.endpoint == "/mcp"
    assert claims.client == CLIENT
    assert claims.issued_at == int(clock.now)
    assert claims.expires_at == int(clock.now) + 600
    assert len(claims.id) == 24 and int(claims.id, 16) >= 0
    # URL-safe and small enough for any HTTP header limit.
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(token) < 400


def test_each_token_is_new_and_opaque() -> None:
    codec = SessionCodec([SECRET])
    first, second = issue(codec), issue(codec)
    assert first != second
    a, b = codec.open(first, "/mcp"), codec.open(second, "/mcp")
    assert a is not None and b is not None and a.id != b.id
    assert b"alice" not in raw(first) and b"claude" not in raw(first)


def test_another_codec_with_the_same_secret_opens_it() -> None:
    token = issue(SessionCodec([SECRET]))
    assert SessionCodec([SECRET]).open(token, "/mcp") is not None
    assert SessionCodec([OTHER]).open(token, "/mcp") is None


def test_every_altered_byte_is_refused() -> None:
    codec = SessionCodec([SECRET])
    sealed = raw(issue(codec))
    for i in range(len(sealed)):
        for flip in (0x01, 0x80):
            altered = bytearray(sealed)
            altered[i] ^= flip
            assert codec.open(spell(bytes(altered)), "/mcp") is None, (i, flip)
    assert codec.open(spell(sealed[:-1]), "/mcp") is None
    assert codec.open(spell(sealed + b"\x00"), "/mcp") is None


def test_every_altered_character_is_refused() -> None:
    codec = SessionCodec([SECRET])
    token = issue(codec)
    for i, char in enumerate(token):
        for other in {"A", "B", "_", "=", "!", " "} - {char}:
            assert codec.open(token[:i] + other + token[i + 1 :], "/mcp") is None, (i, other)
    assert codec.open(token + "=", "/mcp") is None
    assert codec.open(token + "A", "/mcp") is None


def test_expiry_follows_the_clock() -> None:
    clock = ManualClock()
    codec = SessionCodec([SECRET], ttl=60, clock=clock)
    token = issue(codec)
    clock.now += 59
    assert codec.open(token, "/mcp") is not None
    clock.now += 1
    assert codec.open(token, "/mcp") is None
    short = codec.issue(protocol_version="2025-11-25", principal="p", endpoint="/mcp", ttl=5)
    clock.now += 4
    assert codec.open(short, "/mcp") is not None
    clock.now += 1
    assert codec.open(short, "/mcp") is None


def test_a_token_for_another_endpoint_is_refused() -> None:
    codec = SessionCodec([SECRET])
    token = issue(codec, "/mcp-admin")
    assert codec.open(token, "/mcp") is None
    assert codec.open(token, "/mcp-admin/") is None
    assert codec.open(token, "/mcp-admin") is not None


def test_rotation_accepts_previous_keys_and_issues_with_the_current_one() -> None:
    old = SessionCodec([OTHER])
    old_token = issue(old)
    rotated = SessionCodec([SECRET, OTHER])
    assert rotated.open(old_token, "/mcp") is not None
    new_token = issue(rotated)
    assert SessionCodec([SECRET]).open(new_token, "/mcp") is not None
    assert old.open(new_token, "/mcp") is None
    # Once the previous key is dropped, its tokens end.
    assert SessionCodec([SECRET]).open(old_token, "/mcp") is None


def test_bytes_and_string_secrets_derive_the_same_key() -> None:
    token = issue(SessionCodec([SECRET]))
    assert SessionCodec([SECRET.encode()]).open(token, "/mcp") is not None


def test_short_secrets_and_no_keys_are_refused() -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_SECRET_LENGTH} bytes"):
        SessionCodec(["x" * (MIN_SECRET_LENGTH - 1)])
    with pytest.raises(ValueError, match="at least one"):
        SessionCodec([])
    with pytest.raises(ValueError, match="positive"):
        SessionCodec([SECRET], ttl=0)
    assert SessionCodec(["x" * MIN_SECRET_LENGTH]) is not None


def test_random_secrets_make_process_local_sessions() -> None:
    first, second = SessionCodec([random_secret()]), SessionCodec([random_secret()])
    assert first.open(issue(first), "/mcp") is not None
    assert second.open(issue(first), "/mcp") is None


def test_client_info_is_bounded() -> None:
    codec = SessionCodec([SECRET])
    big = {"clientInfo": {"name": "x" * MAX_CLIENT_BYTES}}
    with pytest.raises(ClientTooLarge, match=str(MAX_CLIENT_BYTES)):
        codec.issue(protocol_version="2025-11-25", principal="p", endpoint="/mcp", client=big)
    largest = {"k": "x" * (MAX_CLIENT_BYTES - 8)}
    token = codec.issue(protocol_version="2025-11-25", principal="p" * 512, endpoint="/mcp", client=largest)
    assert len(token) <= MAX_TOKEN_CHARS
    claims = codec.open(token, "/mcp")
    assert claims is not None and claims.client == largest
    with pytest.raises(ValueError, match=f"at most {MAX_TOKEN_CHARS}"):
        codec.issue(protocol_version="2025-11-25", principal="p" * 2000, endpoint="/mcp", client=largest)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "A",
        "====",
        "not a token",
        "é" * 100,
        "\x00" * 64,
        "A" * (MAX_TOKEN_CHARS + 1),
        "A" * 10_000_000,
        spell(os.urandom(200)),
        spell(b"\x01" + os.urandom(60)),
        None,
        b"bytes",
        12345,
        ["list"],
    ],
)
def test_garbage_is_refused_without_raising(garbage: object) -> None:
    assert SessionCodec([SECRET]).open(garbage, "/mcp") is None


def test_a_valid_seal_over_a_foreign_payload_is_refused() -> None:
    """A holder of the key writing another shape (another release) is refused, not misread."""
    from mcp_anything.server import session_tokens

    codec = SessionCodec([SECRET])
    key_id, aead = session_tokens._derive(SECRET)
    header = b"\x01" + key_id
    for payload in (b"{}", b"[1,2,3]", b'["v","p","/mcp",1.5,2,{}]', b'["v","p","/mcp",1,9999999999,[]]', b"nope"):
        nonce = os.urandom(12)
        assert codec.open(spell(header + nonce + aead.encrypt(nonce, payload, header)), "/mcp") is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600) | st.binary(max_size=600).map(spell))
def test_arbitrary_input_never_raises(token: str) -> None:
    assert SessionCodec([SECRET]).open(token, "/mcp") is None
