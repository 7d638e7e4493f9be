"""The knobs of the handlers, taken from Settings plus the host's queue options (host.json)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config.settings import Settings


@dataclass(frozen=True)
class SyncPolicy:
    time_budget_seconds: float = 240.0  # SYNC_TIME_BUDGET_SECONDS
    # host.json extensions.queues.maxDequeueCount: the attempt on which the host would poison a failing message.
    max_dequeue_count: int = 5
    # Delay before unfinished records are tried again (continuation message or released bulk message); the
    # same 30 s host.json gives a failed trigger message (extensions.queues.visibilityTimeout).
    transient_retry_delay_seconds: int = 30
    dependency_retry_limit: int = 5  # DEPENDENCY_RETRY_LIMIT
    dependency_retry_delay_seconds: int = 60  # DEPENDENCY_RETRY_DELAY_SECONDS
    poison_requeue_limit: int = 3  # POISON_REQUEUE_LIMIT
    poison_requeue_delay_seconds: int = 300  # POISON_REQUEUE_DELAY_SECONDS
    bulk_drain_max_records: int = 5000  # BULK_DRAIN_MAX_RECORDS: records planned and written together (a round)
    certificate_warning_days: int = 30  # CERT_EXPIRY_WARNING_DAYS
    dead_letter_warning_depth: int = 1  # warn when the dead-letter queue holds at least this many entries
    poison_warning_depth: int = 1  # warn when the poison queue holds at least this many messages

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        max_dequeue_count: int = 5,
        transient_retry_delay_seconds: int = 30,
    ) -> SyncPolicy:
        return cls(
            time_budget_seconds=float(settings.time_budget_seconds),
            max_dequeue_count=max_dequeue_count,
            transient_retry_delay_seconds=transient_retry_delay_seconds,
            dependency_retry_limit=settings.dependency_retry_limit,
            dependency_retry_delay_seconds=settings.dependency_retry_delay_seconds,
            poison_requeue_limit=settings.poison_requeue_limit,
            poison_requeue_delay_seconds=settings.poison_requeue_delay_seconds,
            bulk_drain_max_records=settings.bulk_drain_max_records,
            certificate_warning_days=settings.certificate_warning_days,
        )
