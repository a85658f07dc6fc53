"""A circuit breaker per upstream: stop calling an upstream that keeps failing, probe it now and then.

closed --N consecutive failures--> open --reset_after elapsed--> half-open: exactly one call (the
probe) goes through while every other call keeps failing fast; the probe's success closes the
circuit, its failure opens it again for another `reset_after`.

Every method is synchronous and O(1): a call on a healthy upstream costs one attribute test in
`allow` and one in `record_success`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, failures: int, reset_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures  # 0: never opens
        self.reset_after = reset_after
        self.consecutive_failures = 0
        self.last_failure = ""  # why the last failed call failed, for the fail-fast message
        self._clock = clock
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._probing or self.retry_in() == 0 else "open"

    def retry_in(self) -> float:
        """Seconds until the next probe is let through (0 when closed or due)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.reset_after - self._clock())

    def allow(self) -> bool:
        """Whether a call may go to the upstream now; True at most once per open period (the probe)."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() - self._opened_at < self.reset_after:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        if self.consecutive_failures:
            self.consecutive_failures = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self, reason: str) -> None:
        self.consecutive_failures += 1
        self.last_failure = reason
        if self.threshold and (self._probing or self.consecutive_failures >= self.threshold):
            self._opened_at = self._clock()
            self._probing = False

    def abandon(self) -> None:
        """A call that was let through ended without an outcome (cancelled): let the next call probe."""
        self._probing = False
