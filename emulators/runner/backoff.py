"""The host's randomized exponential back-off, used for queue polling and for `exponential_backoff` retries.

Follows RandomizedExponentialBackoffStrategy (Azure/azure-sdk-for-net, sdk/storage/
Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Timers/RandomizedExponentialBackoffStrategy.cs;
the WebJobs SDK's ExponentialBackoffRetryAttribute uses the same class): after a success the delay is the
minimum; after each failure it grows to `minimum + r * 2**(n-1) * minimum` with r in [0.8, 1.2), until it
reaches the maximum, where it stays.
"""

from __future__ import annotations

import random
from datetime import timedelta

RANDOMIZATION_FACTOR = 0.2


class RandomizedExponentialBackoff:
    def __init__(self, minimum: timedelta, maximum: timedelta, rng: random.Random | None = None) -> None:
        if minimum < timedelta(0) or maximum < timedelta(0):
            raise ValueError("back-off intervals must not be negative")
        if minimum > maximum:
            raise ValueError("the minimum back-off interval must not be greater than the maximum")
        self._minimum = minimum
        self._maximum = maximum
        self._current = timedelta(0)
        self._exponent = 0
        self._random = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next_delay(self, succeeded: bool) -> timedelta:
        """The delay before the next attempt; `succeeded` resets the back-off (messages were found)."""
        if succeeded:
            self._current = self._minimum
            self._exponent = 1
        elif self._current != self._maximum:
            delay = self._minimum
            if self._exponent > 0:
                factor = self._random.uniform(1 - RANDOMIZATION_FACTOR, 1 + RANDOMIZATION_FACTOR)
                delay += factor * (2 ** (self._exponent - 1)) * self._minimum
            if delay < self._maximum:
                self._current = delay
                self._exponent += 1
            else:
                self._current = self._maximum
        return self._current
