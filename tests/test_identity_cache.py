"""The cache of verified tokens shared by the JWT and introspection strategies, on a clock the test moves."""

from __future__ import annotations

from mcp_anything.identity import Identity
from mcp_anything.inbound.bearer import IdentityCache
from tests.support.clock import FakeClock


def identity(subject: str) -> Identity:
    return Identity(strategy="jwt", subject=subject)


def test_an_entry_lasts_exactly_its_own_ttl() -> None:
    clock = FakeClock()
    cache = IdentityCache(clock=clock.monotonic)
    short, long = cache.digest("short"), cache.digest("long")
    cache.put(short, identity("a"), ttl=5)
    cache.put(long, identity("b"), ttl=60)
    clock.advance(4.9)
    assert cache.get(short) == identity("a")
    clock.advance(0.1)
    assert cache.get(short) is None
    assert cache.get(long) == identity("b")


def test_nothing_is_kept_for_a_token_already_expired() -> None:
    cache = IdentityCache(clock=FakeClock().monotonic)
    cache.put(cache.digest("t"), identity("a"), ttl=0)
    assert cache.get(cache.digest("t")) is None


def test_when_full_expired_entries_go_first_then_the_oldest() -> None:
    clock = FakeClock()
    cache = IdentityCache(max_entries=3, clock=clock.monotonic)
    for name, ttl in (("old", 100), ("expiring", 1), ("newer", 100)):
        cache.put(cache.digest(name), identity(name), ttl)
    clock.advance(2)
    cache.put(cache.digest("fourth"), identity("fourth"), 100)  # the expired entry makes room
    assert [cache.get(cache.digest(n)) is not None for n in ("old", "newer", "fourth")] == [True, True, True]
    cache.put(cache.digest("fifth"), identity("fifth"), 100)  # nothing expired: the oldest goes
    assert cache.get(cache.digest("old")) is None
    assert cache.get(cache.digest("fifth")) == identity("fifth")
