"""The session store (`server.sessions`) on an injected clock: sealed ids, revocation, fair caps and streams.

End-to-end tests (two gateways, Redis, the official client) are in test_sessions_gateway.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY

from mcp_anything.config import SessionsConfig
from mcp_anything.identity import Identity, fingerprint
from mcp_anything.server.sessions import END_OF_STREAM, InitializeLimited, SessionStore, Stream
from tests.support.clock import ManualClock

pytestmark = pytest.mark.anyio

KEY = "k" * 32
OTHER_KEY = "o" * 32


def store(clock: ManualClock | None = None, **settings: Any) -> SessionStore:
    config = SessionsConfig.model_validate({"key": KEY, "initialize_rate": None, **settings})
    return SessionStore(config, clock=clock or ManualClock())


async def open_one(sessions: SessionStore, principal: str = "apikey:alice", endpoint: str = "/mcp") -> str:
    return await sessions.open(
        principal=principal,
        caller=principal,
        protocol_version="2025-11-25",
        endpoint=endpoint,
        client={"clientInfo": {"name": "t", "version": "1"}},
    )


async def test_a_session_opens_anywhere_with_the_key_and_nowhere_without_it() -> None:
    token = await open_one(store())
    claims = await store().get(token, "/mcp")  # another process with the same key
    assert claims is not None
    assert (claims.principal, claims.protocol_version, claims.endpoint) == ("apikey:alice", "2025-11-25", "/mcp")
    assert claims.client == {"clientInfo": {"name": "t", "version": "1"}}
    assert await store(key=OTHER_KEY).get(token, "/mcp") is None


async def test_forged_altered_foreign_and_expired_ids_are_unknown_sessions() -> None:
    clock = ManualClock()
    sessions = store(clock, ttl=60)
    token = await open_one(sessions)
    altered = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    for bad in ("not-a-session", "0" * 64, altered, token + "A"):
        assert await sessions.get(bad, "/mcp") is None, bad
    assert await sessions.get(token, "/other") is None, "opened at another endpoint"
    clock.now += 59
    assert await sessions.get(token, "/mcp") is not None
    clock.now += 1
    assert await sessions.get(token, "/mcp") is None, "expired at issue time + ttl"


async def test_previous_keys_keep_sessions_through_a_rotation() -> None:
    old = await open_one(store())
    rotated = store(key=OTHER_KEY, previous_keys=[KEY])
    assert await rotated.get(old, "/mcp") is not None, "opened under the previous key"
    new = await open_one(rotated)
    assert await store().get(new, "/mcp") is None, "new sessions are sealed with the new key"
    assert await store(key=OTHER_KEY).get(old, "/mcp") is None, "the previous key retired: its sessions end"


async def test_an_ended_session_is_refused_and_its_streams_end() -> None:
    sessions = store()
    token = await open_one(sessions)
    claims = await sessions.get(token, "/mcp")
    assert claims is not None
    stream = sessions.open_stream("/mcp", caller="apikey:alice", session_id=claims.id)
    assert stream is not None
    await sessions.end(claims, "apikey:alice")
    assert await sessions.get(token, "/mcp") is None
    assert stream.events.get_nowait() == END_OF_STREAM
    assert len(sessions) == 0


async def test_a_principals_cap_evicts_its_own_oldest_session_never_anothers() -> None:
    sessions = store(max_per_principal=3)
    bob = await open_one(sessions, "apikey:bob")
    alice = [await open_one(sessions, "apikey:alice") for _ in range(50)]
    assert [await sessions.get(t, "/mcp") is not None for t in alice[-4:]] == [False, True, True, True]
    assert [await sessions.get(t, "/mcp") for t in alice[:-3]] == [None] * 47
    assert await sessions.get(bob, "/mcp") is not None, "another principal's session survives the flood"
    assert len(sessions) == 4


async def test_initialize_is_rate_limited_per_caller() -> None:
    sessions = store(initialize_rate="3/minute")
    for _ in range(3):
        await open_one(sessions, "apikey:alice")
    with pytest.raises(InitializeLimited) as limited:
        await open_one(sessions, "apikey:alice")
    assert limited.value.retry_after >= 1
    assert "initialize_rate (3/minute per caller)" in limited.value.rule
    await open_one(sessions, "apikey:bob")  # counted apart


async def test_a_sessions_new_stream_replaces_its_old_one_and_the_total_is_capped() -> None:
    sessions = store(max_streams=3)
    streams = [sessions.open_stream("/mcp", caller="apikey:alice", session_id="s1") for _ in range(2000)]
    assert all(s is not None for s in streams)
    assert all(s.events.get_nowait() == END_OF_STREAM for s in streams[:-1] if s is not None)
    assert sessions.stream_count == 1
    assert sessions.open_stream("/mcp", caller="apikey:alice", session_id="s2") is not None
    assert sessions.open_stream("/mcp", caller="apikey:alice", subscription_id=1) is not None
    assert sessions.open_stream("/mcp", caller="apikey:alice", session_id="s3") is None, (
        "the process holds max_streams already"
    )
    two = store(max_streams_per_session=2)
    first, second, third = (two.open_stream("/mcp", caller="c", session_id="s") for _ in range(3))
    assert first is not None and first.events.get_nowait() == END_OF_STREAM
    assert second is not None and second.events.empty() and third is not None


async def test_a_callers_streams_are_capped_by_ending_its_own_oldest_never_anothers() -> None:
    sessions = store(max_per_principal=2, max_streams=10)
    bob = sessions.open_stream("/mcp", caller="bob", subscription_id=1)
    alice = [sessions.open_stream("/mcp", caller="alice", subscription_id=n) for n in range(5)]
    assert bob is not None and bob.events.empty()
    ended = [s is not None and not s.events.empty() for s in alice]
    assert ended == [True, True, True, False, False]
    assert sessions.stream_count == 3


async def test_a_stream_ends_cleanly_even_when_its_queue_is_full() -> None:
    stream = Stream("/mcp", "s")
    for _ in range(200):
        stream.push(b"event")
    stream.end()
    assert stream.events.full()
    events = [stream.events.get_nowait() for _ in range(stream.events.qsize())]
    assert events[-1] == END_OF_STREAM


async def test_broadcast_reaches_the_endpoints_streams_tagging_listen_streams() -> None:
    sessions = store()
    get_stream = sessions.open_stream("/mcp", caller="apikey:alice", session_id="s")
    listen = sessions.open_stream("/mcp", caller="apikey:alice", subscription_id="listen-1")
    deaf = sessions.open_stream("/mcp", caller="apikey:alice", subscription_id=7, notify=False)
    elsewhere = sessions.open_stream("/other", caller="c", session_id="t")
    assert get_stream and listen and deaf and elsewhere
    sessions.broadcast("notifications/tools/list_changed", endpoint="/mcp")
    assert get_stream.events.get_nowait() == (
        b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\r\n\r\n'
    )
    tagged = listen.events.get_nowait()
    assert b'"params":{"_meta":{"' + SUBSCRIPTION_ID_META_KEY.encode() + b'":"listen-1"}}' in tagged
    assert deaf.events.empty() and elsewhere.events.empty()
    sessions.retain({"/mcp"})
    assert elsewhere.events.get_nowait() == END_OF_STREAM and sessions.stream_count == 3


async def test_a_session_belongs_to_its_principal_even_a_very_long_one() -> None:
    sessions = store()
    long_subject = "apikey:" + "x" * 5000  # more than a token has room for: bound by its hash
    token = await open_one(sessions, long_subject)
    claims = await sessions.get(token, "/mcp")
    assert claims is not None
    assert sessions.belongs(claims, long_subject)
    assert not sessions.belongs(claims, long_subject + "y")
    assert not sessions.belongs(claims, "apikey:bob")


def test_callers_without_a_subject_are_told_apart_never_by_issuer_alone() -> None:
    def principal(claims: dict[str, Any], token: str) -> str:
        return Identity("jwt", None, fingerprint=fingerprint(claims, token)).principal

    issuer_only = {"iss": "https://idp.example", "aud": "mcp"}
    assert principal(issuer_only, "token-one") != principal(issuer_only, "token-two")
    assert principal({**issuer_only, "client_id": "ci"}, "a") == principal({**issuer_only, "azp": "ci"}, "b")
    assert principal({**issuer_only, "client_id": "ci"}, "a") != principal({**issuer_only, "client_id": "cj"}, "a")
    assert "token-one" not in principal(issuer_only, "token-one"), "the token itself is never in a principal"
    with_subject = Identity("jwt", "alice", fingerprint=None).principal
    assert with_subject == "jwt:alice" and principal(issuer_only, "alice") != with_subject


def test_bearer_identities_without_sub_carry_the_fingerprint_of_their_token() -> None:
    from mcp_anything.inbound.bearer import identity_from_claims

    claims = {"iss": "https://idp.example", "active": True}
    first = identity_from_claims("introspection", dict(claims), "opaque-token-1", ("sub", "username"))
    second = identity_from_claims("introspection", dict(claims), "opaque-token-2", ("sub", "username"))
    named = identity_from_claims(
        "introspection", {**claims, "username": "carol"}, "opaque-token-3", ("sub", "username")
    )
    assert first.principal.startswith("introspection#credential:") and first.principal != second.principal
    assert (named.principal, named.fingerprint) == ("introspection:carol", None)


@pytest.mark.parametrize(
    ("sessions", "problem"),
    [
        ({"key": "${SHORT}"}, "server.sessions.key: a session key must be at least 32 bytes, got 9"),
        ({"key": KEY, "previous_keys": ["${SHORT}"]}, "server.sessions.previous_keys: a session key"),
        ({"previous_keys": [KEY]}, "server.sessions: previous_keys needs `key`"),
        ({"revocations": "postgres://db"}, "server.sessions.revocations: expected `memory` or a redis://"),
        ({"initialize_rate": "lots"}, "server.sessions.initialize_rate: expected a rate such as"),
        ({"ttl": 0}, "server.sessions.ttl: must be more than 0"),
        ({"max_per_principal": 0}, "server.sessions.max_per_principal: Input should be greater than or equal to 1"),
        ({"max_stream": 5}, "server.sessions.max_stream: unknown key"),
    ],
)
def test_session_config_errors_name_the_key_and_never_the_secret(sessions: dict[str, Any], problem: str) -> None:
    from mcp_anything.config import ConfigError, parse_config

    raw = {"server": {"sessions": sessions}, "groups": [], "upstreams": []}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, env={"SHORT": "too-short"})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
    assert not any("too-short" in p for p in caught.value.problems)
