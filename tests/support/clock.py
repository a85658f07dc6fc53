"""A clock tests move by hand, for code that takes `clock` (monotonic) and `wall_clock` (epoch seconds)."""

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
