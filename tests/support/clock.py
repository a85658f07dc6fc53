"""Clocks tests move by hand.

`FakeClock` serves code that takes `clock` (monotonic) and `wall_clock` (epoch seconds) and must agree
with tokens from a real identity provider; `ManualClock` is one callable clock set through `now`.
"""

from __future__ import annotations

import time


class FakeClock:
    def __init__(self) -> None:
        self._monotonic = 1000.0
        # Tokens from a real identity provider carry real `iat`/`exp` values. The wall clock starts a little
        # ahead, so a token the provider issues a second after the fixture was made (a loaded machine) does
        # not look issued in the future to a verifier with no leeway.
        self._wall = time.time() + 5.0

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._monotonic += seconds
        self._wall += seconds


class ManualClock:
    """`clock()` returns `now`, which the test sets or advances itself."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
