"""Service protection limits and the latency model.

Limits (PAD/api-limits.md): per user, over a sliding window (default 300 s): number of requests (6000), combined
execution time (1,200,000 ms), and concurrent requests (52). The request and execution-time limits trip only
once they are exceeded within the window; the concurrency limit trips immediately. A throttled request gets 429
with `Retry-After` (seconds) and one of three error codes. `x-ms-ratelimit-burst-remaining-xrm-requests` and
`x-ms-ratelimit-time-remaining-xrm-requests` report what is left (debugging only). A bulk action or a `$batch`
counts as ONE request (PAD/bulk-operations.md FAQ; api-limits.md), but its execution time is the sum of its work.

Not modelled: limits per web server (Dataverse counts per server; the emulator is one server), and throttled
requests themselves do not count against the window (the docs do not say they do).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from emulators.dataverse import errors


@dataclass(frozen=True)
class ServiceProtectionLimits:
    requests: int = 6000
    execution_ms: int = 1_200_000
    concurrency: int = 52
    window_seconds: float = 300.0  # tests compress it (e.g. 2 s); messages keep Dataverse's wording

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def throttled(self, code: str, retry_after_seconds: int) -> errors.DataverseError:
        """The 429 for limit `code`, its message naming these limits (as PAD/api-limits.md words them)."""
        return errors.throttled(
            code,
            retry_after_seconds,
            requests=self.requests,
            execution_ms=self.execution_ms,
            concurrency=self.concurrency,
            window=round(self.window_seconds),
        )


@dataclass(frozen=True)
class LatencyModel:
    """Server time of a request = scale x (base + per-operation costs); it is slept (no CPU) and counted as
    execution time. Microsoft publishes no per-operation timings; defaults are chosen so that a single write costs
    what typical Dataverse round trips show (tens of ms), a bulk action is several times cheaper per record than
    the same records in `$batch`, and `$batch` operations run one after another (PAD/bulk-operations.md,
    PAD/optimize-performance-create-update.md). See docs/dataverse-emulator.md#latency-model.
    """

    base_ms: float = 10.0  # every request: front end, authentication, routing
    read_ms: float = 8.0  # a retrieve or a query
    read_row_ms: float = 0.02  # per row returned
    write_ms: float = 20.0  # one create/update/upsert/delete in its own pipeline
    bulk_record_ms: float = 4.0  # per target of CreateMultiple/UpdateMultiple/UpsertMultiple
    batch_operation_ms: float = 2.0  # per operation inside $batch, on top of the operation's own cost
    scale: float = 1.0

    @classmethod
    def zero(cls) -> LatencyModel:
        return cls(scale=0.0)

    def request_ms(self, cost: Cost) -> float:
        if self.scale == 0:
            return 0.0
        total = (
            self.base_ms
            + cost.reads * self.read_ms
            + cost.rows_returned * self.read_row_ms
            + cost.writes * self.write_ms
            + cost.bulk_records * self.bulk_record_ms
            + cost.batch_operations * self.batch_operation_ms
        )
        return total * self.scale

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def updated(self, changes: dict[str, Any]) -> LatencyModel:
        return replace(self, **{k: float(v) for k, v in changes.items()})


@dataclass
class Cost:
    """What one HTTP request did, for the latency model and the counters."""

    kind: str = ""
    reads: int = 0
    rows_returned: int = 0
    writes: int = 0
    bulk_records: int = 0
    batch_operations: int = 0
    operations: int = 0
    records_written: int = 0

    def count_write(self) -> None:
        """One record written by a single-record operation."""
        self.writes += 1
        self.operations += 1
        self.records_written += 1

    def count_read(self, rows_returned: int = 0) -> None:
        """One retrieve or query of records, answering with `rows_returned` rows."""
        self.reads += 1
        self.operations += 1
        self.rows_returned += rows_returned


@dataclass
class _Usage:
    arrivals: deque[float] = field(default_factory=deque)
    executions: deque[tuple[float, float]] = field(default_factory=deque)
    execution_total_ms: float = 0.0
    in_flight: int = 0


class Throttle:
    """Sliding-window accounting per user (keyed by systemuserid)."""

    def __init__(self, limits: ServiceProtectionLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._usage: dict[str, _Usage] = {}

    def reset(self) -> None:
        self._usage.clear()

    def _trim(self, usage: _Usage, now: float) -> None:
        horizon = now - self.limits.window_seconds
        while usage.arrivals and usage.arrivals[0] <= horizon:
            usage.arrivals.popleft()
        while usage.executions and usage.executions[0][0] <= horizon:
            usage.execution_total_ms -= usage.executions.popleft()[1]

    def admit(self, key: str) -> errors.DataverseError | None:
        """Count a new request, or return the 429 error to answer instead."""
        usage = self._usage.setdefault(key, _Usage())
        now = self._clock()
        self._trim(usage, now)
        limits = self.limits
        if usage.in_flight >= limits.concurrency:
            return self._throttled(errors.THROTTLE_CONCURRENCY, 1.0)
        if len(usage.arrivals) >= limits.requests:
            wait = usage.arrivals[len(usage.arrivals) - limits.requests] + limits.window_seconds - now
            return self._throttled(errors.THROTTLE_REQUESTS, wait)
        if usage.execution_total_ms > limits.execution_ms:
            return self._throttled(errors.THROTTLE_EXECUTION_TIME, self._execution_wait(usage, now))
        usage.arrivals.append(now)
        usage.in_flight += 1
        return None

    def _execution_wait(self, usage: _Usage, now: float) -> float:
        excess = usage.execution_total_ms - self.limits.execution_ms
        for started, duration in usage.executions:
            excess -= duration
            if excess < 0:
                return started + self.limits.window_seconds - now
        return self.limits.window_seconds

    def _throttled(self, code: str, wait_seconds: float) -> errors.DataverseError:
        return self.limits.throttled(code, max(1, math.ceil(wait_seconds)))

    def record_execution(self, key: str, duration_ms: float) -> None:
        usage = self._usage.setdefault(key, _Usage())
        usage.executions.append((self._clock(), duration_ms))
        usage.execution_total_ms += duration_ms

    def finish(self, key: str) -> None:
        usage = self._usage.get(key)
        if usage is not None and usage.in_flight > 0:
            usage.in_flight -= 1

    def remaining(self, key: str) -> tuple[int, float]:
        """(requests left, execution seconds left) in the current window, for the x-ms-ratelimit headers."""
        usage = self._usage.get(key)
        if usage is None:
            return self.limits.requests, self.limits.execution_ms / 1000
        self._trim(usage, self._clock())
        requests_left = max(0, self.limits.requests - len(usage.arrivals))
        return requests_left, max(0.0, self.limits.execution_ms - usage.execution_total_ms) / 1000
