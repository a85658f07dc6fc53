"""Handshake-era sessions (`server.sessions`): idle expiry and the size cap, on an injected clock."""

from __future__ import annotations

import pytest

from mcp_anything.server.sessions import END_OF_STREAM, SessionStore

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_session_expires_after_its_idle_timeout_and_each_request_extends_it() -> None:
    clock = Clock()
    store = SessionStore(idle_timeout=60, clock=clock)
    session = store.create("alice", "2025-11-25", "g")
    clock.now += 59
    assert store.get(session.id) is session, "used just before the timeout"
    clock.now += 59
    assert store.get(session.id) is session, "the last request, not the first, starts the idle time"
    clock.now += 60
    assert store.get(session.id) is None
    assert len(store) == 0, "an expired session is removed when found"


async def test_the_least_recently_used_session_makes_room_when_the_store_is_full() -> None:
    clock = Clock()
    store = SessionStore(max_sessions=2, clock=clock)
    first = store.create("alice", "2025-11-25")
    second = store.create("bob", "2025-11-25")
    clock.now += 1
    assert store.get(first.id) is first  # now `second` is the least recently used
    third = store.create("carol", "2025-11-25")
    assert store.get(second.id) is None
    assert store.get(first.id) is first and store.get(third.id) is third


async def test_creating_a_session_drops_every_expired_one_first() -> None:
    clock = Clock()
    store = SessionStore(idle_timeout=10, clock=clock)
    old = [store.create(f"caller-{i}", "2025-11-25") for i in range(3)]
    clock.now += 10
    fresh = store.create("dave", "2025-11-25")
    assert len(store) == 1 and store.get(fresh.id) is fresh
    assert all(store.get(s.id) is None for s in old)


async def test_notifications_reach_a_groups_sessions_and_retain_closes_the_others() -> None:
    store = SessionStore()
    kept = store.create("alice", "2025-11-25", "kept")
    gone = store.create("bob", "2025-11-25", "gone")
    store.broadcast("notifications/tools/list_changed", group="kept")
    assert kept.events.get_nowait().startswith(b"event: message\r\ndata: ")
    assert gone.events.empty()
    store.retain({"kept"})
    assert store.get(gone.id) is None and store.get(kept.id) is kept
    assert gone.events.get_nowait() == END_OF_STREAM
