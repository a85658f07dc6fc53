"""A clock tests move by hand, for code that takes `clock` (monotonic) and `wall_clock` (epoch seconds)."""

from __future__ import annotations

import time


class FakeClock:
    def __init__(self) -> None:
        self._monotonic = 1000.0
        self._wall = time.time()  # tokens from a real identity provider carry real `exp` values

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._monotonic += seconds
        self._wall += seconds
