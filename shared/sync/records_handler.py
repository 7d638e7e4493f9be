"""The queue-triggered records handler (RECORDS_QUEUE): one message in, every record settled or retried.

Transient failures and what is retried (docs/operations.md#retries):
- Nothing settled in this delivery (e.g. Dataverse or the token is down for all records): raise `RetryLater`;
  the host makes the message visible again after host.json `visibilityTimeout` and counts the delivery.
  Nothing was written, dead-lettered or sent, so re-delivering the whole message repeats nothing.
- Something settled (some records written, dead-lettered or re-scheduled) while others are still transient:
  send a *continuation* message carrying only the unfinished records (with their attempt counts) and complete
  this one. Raising instead would re-send records already written, harmless for upserts but not for `create`
  (a duplicate row) or `delete` (a 404 dead letter for a row that is gone).
- Last allowed attempt (carried attempts + dequeue count >= maxDequeueCount) and still nothing settled: write a
  poison envelope with the cause (error class/code/message, original message id, dequeue count) to the poison
  queue and complete, instead of letting the host copy a bare body that says nothing about why.
Delivery is at-least-once: a crash after writing but before completing re-delivers the message; writes are
idempotent upserts where the producer gives keys, which is why keys are the recommended way to sync.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass

from shared.queues.names import RECORDS_POISON_QUEUE
from shared.sync.engine import SyncEngine, Tally, Unit, failed
from shared.sync.envelopes import PoisonCause, continuation_messages, poison_messages, record_with_delivery
from shared.sync.execution import DEADLINE_MESSAGE, PARENT_PENDING_MESSAGE, WRITER_RAISED_PREFIX
from shared.sync.logs import event, logger, refs
from shared.sync.ports import Clock, IncomingMessage, JsonValue

log = logger("records")


class RetryLater(Exception):
    """Raised so that the Functions host re-delivers the message later (nothing was settled this time)."""


@dataclass(frozen=True)
class MessageReport:
    message_id: str
    tally: Tally
    outcome: str  # "completed", "continued", "poisoned" (RetryLater is raised, not reported)


@dataclass(frozen=True)
class RecordsHandler:
    engine: SyncEngine
    poison_queue: str = RECORDS_POISON_QUEUE

    def handle(self, message: IncomingMessage) -> MessageReport:
        """Settle one message. Raises RetryLater when the host should deliver it again."""
        deadline = self.engine.clock.monotonic() + self.engine.policy.time_budget_seconds
        unit = self.engine.accept(message)
        self.engine.settle([unit], deadline=deadline)
        outcome = "completed"
        if unit.pending:
            outcome = self._retry_pending(unit)
        self._log_summary(unit, outcome)
        return MessageReport(message.id, unit.tally, outcome)

    def _retry_pending(self, unit: Unit) -> str:
        message, policy = unit.message, self.engine.policy
        if unit.progressed:
            send_continuation(self.engine, unit)
            return "continued"
        attempt = pending_attempt(unit)
        if attempt >= policy.max_dequeue_count:
            write_poison_envelope(self.engine, unit, self.poison_queue)
            return "poisoned"
        unit.tally.retried += len(unit.pending)
        cause = describe_cause(unit)
        event(
            log,
            logging.WARNING,
            "message.retry",
            message_id=message.id,
            dequeue_count=message.dequeue_count,
            attempt=attempt,
            max_attempts=policy.max_dequeue_count,
            error_class=cause.error_class,
            code=cause.code,
            status=cause.status,
            reason=cause.message,
            refs=refs(_pending_refs(unit)),
        )
        raise RetryLater(
            f"{len(unit.pending)} records failed transiently ({cause.error_class}: {cause.message}); "
            f"attempt {attempt} of {policy.max_dequeue_count}"
        )

    def _log_summary(self, unit: Unit, outcome: str) -> None:
        t = unit.tally
        event(
            log,
            logging.INFO,
            "message.done",
            message_id=unit.message.id,
            outcome=outcome,
            dequeue_count=unit.message.dequeue_count,
            records=t.records,
            written=t.written,
            dead_lettered=t.dead_lettered,
            rescheduled=t.rescheduled,
            superseded=t.superseded,
            retried=t.retried,
            poisoned=t.poisoned,
        )


def send_continuation(engine: SyncEngine, unit: Unit) -> None:
    """Send the unfinished records of `unit` back to its queue, after a delay, as new message(s).

    This delivery made progress, so it does not count against the attempt limit: the carried count becomes
    the deliveries before this one. Progress strictly shrinks the record set, so the loop is bounded.
    """
    message, delay = unit.message, engine.policy.transient_retry_delay_seconds
    items = _unfinished_records(unit, engine.clock, counted_deliveries=message.dequeue_count - 1)
    texts = continuation_messages(items)
    for text in texts:
        engine.sender.send(message.queue, text, delay_seconds=delay)
    unit.tally.retried += len(unit.pending)
    cause = describe_cause(unit)
    event(
        log,
        logging.WARNING,
        "message.continued",
        message_id=message.id,
        queue=message.queue,
        records=len(items),
        messages=len(texts),
        delay_seconds=delay,
        error_class=cause.error_class,
        code=cause.code,
        reason=cause.message,
        refs=refs(_pending_refs(unit)),
    )


def write_poison_envelope(engine: SyncEngine, unit: Unit, poison_queue: str) -> None:
    """Put the unfinished records on the poison queue with the cause, so the triage knows why."""
    message = unit.message
    cause = describe_cause(unit)
    items = _unfinished_records(unit, engine.clock, counted_deliveries=message.dequeue_count)
    original: dict[str, JsonValue] = {
        "queue": message.queue,
        "message_id": message.id,
        "dequeue_count": message.dequeue_count,
        "inserted_on": message.inserted_on.isoformat() if message.inserted_on else None,
    }
    for text in poison_messages(items, cause=cause, original=original, poisoned_at=engine.clock.now().isoformat()):
        engine.sender.send(poison_queue, text)
    unit.tally.poisoned += len(items)
    event(
        log,
        logging.ERROR,
        "message.poisoned",
        message_id=message.id,
        dequeue_count=message.dequeue_count,
        records=len(items),
        error_class=cause.error_class,
        code=cause.code,
        status=cause.status,
        reason=cause.message,
        request_id=cause.request_id,
        environments=_environments(unit),
    )


def describe_cause(unit: Unit) -> PoisonCause:
    """The most frequent transient failure among the unit's pending records, as a poison cause."""
    results = [result for _, result in unit.pending]
    if not results:
        return PoisonCause("unknown", "NoResult")
    common = Counter((r.code, r.status, r.message) for r in results).most_common(1)[0][0]
    sample = next(r for r in results if (r.code, r.status, r.message) == common)
    if sample.message == DEADLINE_MESSAGE:
        error_class = "DeadlineExceeded"
    elif sample.message == PARENT_PENDING_MESSAGE:
        error_class = "ParentPending"
    elif sample.message and sample.message.startswith(WRITER_RAISED_PREFIX):
        error_class = sample.message.removeprefix(WRITER_RAISED_PREFIX)
    else:
        error_class = "TransientWriteFailure"
    return PoisonCause("transient", error_class, sample.code, sample.status, sample.message, sample.request_id)


def pending_attempt(unit: Unit) -> int:
    """The attempt this delivery was for the unit's pending records: carried transient attempts + deliveries."""
    return max(record.delivery.transient_attempts for record, _ in unit.pending) + unit.message.dequeue_count


def _unfinished_records(unit: Unit, clock: Clock, *, counted_deliveries: int) -> list[dict[str, JsonValue]]:
    """The pending records, each with its failure recorded and `counted_deliveries` of this message's deliveries
    added to its carried transient attempts."""
    items = []
    for record, result in unit.pending:
        delivery = failed(record.delivery, result, clock)
        attempts = record.delivery.transient_attempts + counted_deliveries
        items.append(record_with_delivery(record, dataclasses.replace(delivery, transient_attempts=attempts)))
    return items


def _pending_refs(unit: Unit) -> list[str]:
    return [record.ref for record, _ in unit.pending]


def _environments(unit: Unit) -> list[JsonValue]:
    # a list display takes its type from the return annotation (list is invariant: list[str] is no list[JsonValue])
    return [*sorted({record.environment for record, _ in unit.pending if record.environment})]
