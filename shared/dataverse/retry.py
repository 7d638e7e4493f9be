"""When to retry a Dataverse request, and how long to wait (pure decisions; the policy does the waiting).

- 429 (service protection, all three limit codes): wait `Retry-After` seconds as the docs require
  (api-limits: "Retry-After ... the duration to wait before sending the next request"); without the header,
  back off exponentially. Throttling is expected under load, so it gets its own, larger retry budget.
- 502/503/504, connection errors, timeouts and the SQL deadlock/timeout codes: exponential back-off with jitter
  (a `Retry-After` on 503 is honoured too).
- Everything else (4xx, permanent 5xx): no retry. 401 is handled by the auth policy (refresh once).
- Nothing waits past the caller's deadline: a wait that would end after it gives up instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from shared.dataverse.errors import DataverseError


@dataclass(frozen=True)
class RetryOptions:
    max_throttle_retries: int = 30  # 429s per request; the deadline usually ends it first
    max_transient_retries: int = 6  # 5xx/connection errors per request
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0
    max_retry_after_seconds: float = 300.0  # Dataverse's window is 5 minutes; never wait longer on one answer


@dataclass
class RetryBudget:
    """Retries spent so far by one logical request."""

    throttled: int = 0
    transient: int = 0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds (RFC 9110), a TimeSpan `hh:mm:ss` (the form
    the SDK's ErrorDetails use), or an HTTP-date. None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    if text.count(":") == 2 and "," not in text:
        try:
            hours, minutes, seconds = (float(p) for p in text.split(":"))
            return max(0.0, hours * 3600 + minutes * 60 + seconds)
        except ValueError:
            return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    remaining = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, remaining)


def backoff_seconds(attempt: int, options: RetryOptions, rng: random.Random) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random, so retries spread but still grow."""
    ceiling = min(options.backoff_cap_seconds, options.backoff_base_seconds * 2.0 ** max(0, attempt))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_delay(
    error: DataverseError, retry_after: float | None, budget: RetryBudget, options: RetryOptions, rng: random.Random
) -> float | None:
    """Seconds to wait before retrying, or None when the error must not (or may no longer) be retried.

    Updates `budget`.
    """
    if not error.is_transient:
        return None
    if error.status == 429:
        if budget.throttled >= options.max_throttle_retries:
            return None
        budget.throttled += 1
        if retry_after is not None:
            return min(retry_after, options.max_retry_after_seconds)
        return backoff_seconds(budget.throttled - 1, options, rng)
    if budget.transient >= options.max_transient_retries:
        return None
    budget.transient += 1
    delay = backoff_seconds(budget.transient - 1, options, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, options.max_retry_after_seconds))
    return delay
