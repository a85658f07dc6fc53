"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

from mcp_anything.breaker import CircuitBreaker
from tests.support.clock import ManualClock


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(3, 10.0, ManualClock())
    breaker.record_failure("HTTP 503")
    breaker.record_failure("HTTP 503")
    breaker.record_success()
    breaker.record_failure("HTTP 503")
    breaker.record_failure("HTTP 503")
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_failure("connection refused")
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.last_failure == "connection refused" and breaker.consecutive_failures == 3


def test_half_open_admits_one_probe_per_period() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure("HTTP 502")
    clock.now += 9.5
    assert not breaker.allow() and breaker.retry_in() == 0.5
    clock.now += 0.5
    assert breaker.state == "half_open"
    assert breaker.allow(), "the probe"
    assert not breaker.allow(), "everyone else while the probe is out"
    breaker.record_failure("HTTP 502")
    assert breaker.state == "open" and breaker.retry_in() == 10.0, "a failed probe opens a new period"
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_an_abandoned_probe_lets_the_next_call_probe() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(1, 1.0, clock)
    breaker.record_failure("timeout")
    clock.now += 1
    assert breaker.allow()
    breaker.abandon()
    assert breaker.allow()


def test_zero_failures_never_opens() -> None:
    breaker = CircuitBreaker(0, 1.0, ManualClock())
    for _ in range(100):
        breaker.record_failure("HTTP 503")
    assert breaker.state == "closed" and breaker.allow()
