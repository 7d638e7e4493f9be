from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

from shared.dataverse.concurrency import AdaptiveConcurrency
from shared.dataverse.errors import DataverseError
from shared.dataverse.retry import RetryBudget, RetryOptions, backoff_seconds, parse_retry_after, retry_delay

THROTTLED = DataverseError(429, "0x80072322", "Number of requests exceeded the limit")
UNAVAILABLE = DataverseError(503, None, "Service Unavailable")
INVALID = DataverseError(400, "0x80044331", "too long")


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("00:01:30") == 90.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10 GMT", now) == 10.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_429_waits_exactly_retry_after_and_has_its_own_budget() -> None:
    options = RetryOptions(max_throttle_retries=3, max_transient_retries=1)
    budget, rng = RetryBudget(), random.Random(1)
    assert [retry_delay(THROTTLED, 7.0, budget, options, rng) for _ in range(3)] == [7.0, 7.0, 7.0]
    assert retry_delay(THROTTLED, 7.0, budget, options, rng) is None
    # transient budget is separate
    assert retry_delay(UNAVAILABLE, None, budget, options, rng) is not None
    assert retry_delay(UNAVAILABLE, None, budget, options, rng) is None


def test_retry_after_is_capped() -> None:
    delay = retry_delay(THROTTLED, 10_000.0, RetryBudget(), RetryOptions(max_retry_after_seconds=300), random.Random())
    assert delay == 300


def test_permanent_errors_are_never_retried() -> None:
    assert retry_delay(INVALID, 1.0, RetryBudget(), RetryOptions(), random.Random()) is None
    assert retry_delay(DataverseError(401, None, ""), None, RetryBudget(), RetryOptions(), random.Random()) is None


def test_backoff_grows_with_jitter_within_bounds() -> None:
    options = RetryOptions(backoff_base_seconds=1.0, backoff_cap_seconds=8.0)
    rng = random.Random(42)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        samples = [backoff_seconds(attempt, options, rng) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling / 4  # jitter spreads retries


def test_503_retry_after_is_a_floor_for_backoff() -> None:
    delay = retry_delay(UNAVAILABLE, 20.0, RetryBudget(), RetryOptions(), random.Random())
    assert delay == 20.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_aimd_halves_on_throttle_once_per_cooldown_and_grows_back() -> None:
    clock = FakeClock()
    limiter = AdaptiveConcurrency(16, decrease_cooldown_seconds=1.0, clock=clock)
    limiter.on_throttle(None)
    limiter.on_throttle(None)  # same burst: counted once
    assert limiter.limit == 8
    clock.now = 2.0
    limiter.on_throttle(None)
    assert limiter.limit == 4
    for _ in range(5):
        limiter.on_success()
    assert limiter.limit == 5  # about +1 per round of `limit` successes
    for _ in range(1000):
        limiter.on_success()
    assert limiter.limit == 16  # never above the maximum


def test_dop_hint_caps_the_limit() -> None:
    limiter = AdaptiveConcurrency(16)
    limiter.on_dop_hint(5)
    assert limiter.limit == 5
    assert limiter.ceiling == 5
    for _ in range(100):
        limiter.on_success()
    assert limiter.limit == 5
    limiter.on_dop_hint(0)  # ignored
    assert limiter.ceiling == 5


def test_acquire_blocks_at_the_limit_and_times_out_at_the_deadline() -> None:
    limiter = AdaptiveConcurrency(2)
    deadline = time.monotonic() + 5
    assert limiter.acquire(deadline)
    assert limiter.acquire(deadline)
    assert not limiter.acquire(time.monotonic() + 0.05)
    released = threading.Timer(0.05, limiter.release)
    released.start()
    assert limiter.acquire(time.monotonic() + 5)
    assert limiter.in_flight == 2


def test_throttle_pauses_new_requests_for_retry_after() -> None:
    limiter = AdaptiveConcurrency(4)
    limiter.on_throttle(0.2)
    started = time.monotonic()
    assert not limiter.acquire(started + 0.05)  # still paused at the deadline
    assert limiter.acquire(started + 5)
    print(f"\nwaited {time.monotonic() - started:.3f}s for a 0.2 s Retry-After pause")
    assert time.monotonic() - started >= 0.19
