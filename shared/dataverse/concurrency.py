"""Adaptive concurrency per environment: how many requests may be in flight at once.

- Upper bound: `DATAVERSE_MAX_PARALLELISM`, lowered to the server's `x-ms-dop-hint` (the recommended degree of
  parallelism; send-parallel-requests doc) once a response carries it.
- AIMD, as TCP does: each success adds 1/limit (about +1 per round of requests); a 429 halves the limit (at most
  once per cool-down, so a burst of 429s from requests already in flight counts once).
- A 429 also pauses new requests for its `Retry-After`: the limits are per user and server, and the docs say to
  wait before sending the next request (api-limits).
Thread-safe: the writer runs requests on a thread pool.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class AdaptiveConcurrency:
    def __init__(
        self,
        maximum: int,
        *,
        decrease_cooldown_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maximum < 1:
            raise ValueError("maximum must be >= 1")
        self._maximum = maximum
        self._hint: int | None = None
        self._limit = float(maximum)
        self._in_flight = 0
        self._paused_until = 0.0
        self._last_decrease = -math.inf
        self._cooldown = decrease_cooldown_seconds
        self._clock = clock
        self._condition = threading.Condition()

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    @property
    def ceiling(self) -> int:
        return min(self._maximum, self._hint) if self._hint else self._maximum

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self, deadline: float) -> bool:
        """Wait for a slot (and for any throttling pause to end); False if `deadline` (monotonic) passes first."""
        with self._condition:
            while True:
                now = self._clock()
                if now >= deadline:
                    return False
                if now < self._paused_until:
                    self._condition.wait(min(self._paused_until, deadline) - now)
                elif self._in_flight < self.limit:
                    self._in_flight += 1
                    return True
                else:
                    self._condition.wait(deadline - now)

    def release(self) -> None:
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    def on_success(self) -> None:
        with self._condition:
            self._limit = min(float(self.ceiling), self._limit + 1.0 / self._limit)
            self._condition.notify_all()

    def on_throttle(self, retry_after: float | None) -> None:
        with self._condition:
            now = self._clock()
            if now - self._last_decrease >= self._cooldown:
                self._limit = max(1.0, self._limit / 2)
                self._last_decrease = now
            if retry_after:
                self._paused_until = max(self._paused_until, now + retry_after)

    def on_dop_hint(self, hint: int) -> None:
        if hint < 1:
            return
        with self._condition:
            self._hint = hint
            self._limit = min(self._limit, float(self.ceiling))
            self._condition.notify_all()
