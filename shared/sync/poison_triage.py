"""Poison triage (queue trigger on RECORDS_POISON_QUEUE): every poisoned message ends re-queued or dead-lettered.

Two kinds of message arrive here:
- a poison envelope written by the records handler or the bulk drain on the last allowed attempt. It carries
  the cause. A transient cause (outage, throttling past the budget) is re-queued to the records queue after
  POISON_REQUEUE_DELAY_SECONDS, at most POISON_REQUEUE_LIMIT times per record (the count travels with each
  record); after that, each record is dead-lettered as `retries_exhausted` with the cause.
- a bare body the host copied itself after maxDequeueCount failed deliveries: the function crashed, timed out,
  or a port (e.g. the dead-letter queue) kept failing. The poison copy has a new id and a reset dequeue count
  (functions-bindings-storage-queue, "poison messages"), so the original id is lost; the cause is unknown, and
  re-queueing something that may crash the worker is not safe: each record is dead-lettered as `poisoned`
  (replayable), an unparseable body as the invalid message it is.
This function must not fail on content: the host has no poison queue for a poison queue and would leave a
failing message invisible, retried forever. It raises only when a queue it writes to fails.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.queues.names import RECORDS_QUEUE
from shared.sync.contract import (
    Record,
    RejectedMessage,
    RejectedRecord,
    decode_body,
    parse_record,
    read_message,
)
from shared.sync.deadletter import Reason, Source, dead_letter_message, dead_letter_record, dead_letter_rejected
from shared.sync.engine import Tally
from shared.sync.envelopes import (
    PoisonCause,
    PoisonEnvelope,
    continuation_messages,
    read_poison_envelope,
    record_with_delivery,
)
from shared.sync.logs import event, logger
from shared.sync.policy import SyncPolicy
from shared.sync.ports import Clock, DeadLetterSink, IncomingMessage, Outcome, QueueSender, WriteResult
from shared.sync.problems import Code, ReasonKind

log = logger("poison")

HOST_POISONED_MESSAGE = (
    "the Functions host moved this message to the poison queue after maxDequeueCount failed deliveries without "
    "a recorded cause (the function crashed, timed out, or could not reach a queue); search the logs for its "
    "records' refs, fix the cause, then replay"
)


@dataclass(frozen=True)
class TriageReport:
    message_id: str
    tally: Tally
    outcome: str  # "requeued", "dead_lettered"


class PoisonTriage:
    def __init__(
        self,
        *,
        dead_letters: DeadLetterSink,
        sender: QueueSender,
        clock: Clock,
        policy: SyncPolicy,
        records_queue: str = RECORDS_QUEUE,
    ) -> None:
        self.dead_letters = dead_letters
        self.sender = sender
        self.clock = clock
        self.policy = policy
        self.records_queue = records_queue

    def handle(self, message: IncomingMessage) -> TriageReport:
        tally = Tally(messages=1)
        text = decode_body(message.body) if message.encoding_error is None else None
        envelope = read_poison_envelope(text) if isinstance(text, str) else None
        if envelope is not None:
            outcome = self._triage_envelope(message, envelope, tally)
        else:
            outcome = self._triage_bare(message, tally)
        event(
            log,
            logging.WARNING,
            "poison.triaged",
            message_id=message.id,
            outcome=outcome,
            records=tally.records,
            requeued=tally.requeued,
            dead_lettered=tally.dead_lettered,
        )
        return TriageReport(message.id, tally, outcome)

    # --- envelopes written by the records handler or the bulk drain ---------------------------------------

    def _triage_envelope(self, message: IncomingMessage, envelope: PoisonEnvelope, tally: Tally) -> str:
        original = _original_source(envelope.original, message)
        records: list[Record] = []
        for index, item in enumerate(envelope.records):
            parsed = parse_record(item, index=index, message_id=original.message_id)
            if isinstance(parsed, Record):
                records.append(parsed)
            else:
                self._dead_letter_invalid(parsed, original, tally)
        tally.records = len(envelope.records)
        if not records:
            return "dead_lettered"
        requeues = max(record.delivery.poison_requeues for record in records)
        if envelope.cause.kind == "transient" and requeues < self.policy.poison_requeue_limit:
            self._requeue(records, envelope, requeues + 1, tally)
            return "requeued"
        for record in records:
            self._dead_letter_exhausted(record, envelope, original, tally)
        return "dead_lettered"

    def _requeue(self, records: list[Record], envelope: PoisonEnvelope, requeue: int, tally: Tally) -> None:
        items = []
        for record in records:
            delivery = dataclasses.replace(record.delivery, poison_requeues=requeue, transient_attempts=0)
            items.append(record_with_delivery(record, delivery))
        delay = self.policy.poison_requeue_delay_seconds
        for text in continuation_messages(items):
            self.sender.send(self.records_queue, text, delay_seconds=delay)
        tally.requeued += len(items)
        cause = envelope.cause
        event(
            log,
            logging.WARNING,
            "poison.requeued",
            original_message_id=_text(envelope.original.get("message_id")),
            records=len(items),
            requeue=requeue,
            limit=self.policy.poison_requeue_limit,
            delay_seconds=delay,
            error_class=cause.error_class,
            code=cause.code,
            reason=cause.message,
        )

    def _dead_letter_exhausted(self, record: Record, envelope: PoisonEnvelope, original: Source, tally: Tally) -> None:
        cause = envelope.cause
        reason = Reason(
            ReasonKind.RETRIES_EXHAUSTED,
            Code.TRANSIENT_EXHAUSTED.value,
            f"still failing after {record.delivery.transient_attempts} attempts and "
            f"{record.delivery.poison_requeues} re-queues: {cause.error_class}"
            + (f": {cause.message}" if cause.message else ""),
        )
        entry = dead_letter_record(
            self.dead_letters,
            record,
            reason=reason,
            source=original,
            now=self.clock.now(),
            dataverse=_cause_as_result(record.ref, cause),
            attempts=record.delivery.transient_attempts + record.delivery.dependency_attempts,
        )
        tally.dead_lettered += 1
        event(
            log,
            logging.ERROR,
            "record.dead_lettered",
            ref=record.ref,
            kind=reason.kind.value,
            code=cause.code or reason.code,
            environment=record.environment,
            table=record.table,
            original_message_id=original.message_id,
            entry=entry.id,
        )

    # --- bare bodies poisoned by the host -------------------------------------------------------------------

    def _triage_bare(self, message: IncomingMessage, tally: Tally) -> str:
        source = Source(message.queue, message.id, message.dequeue_count)
        parsed = read_message(message)
        if isinstance(parsed, RejectedMessage):
            entry = dead_letter_message(
                self.dead_letters, parsed.problem, parsed.text, source=source, now=self.clock.now()
            )
            tally.dead_lettered += 1
            event(
                log,
                logging.WARNING,
                "message.dead_lettered",
                message_id=message.id,
                code=parsed.problem.code.value,
                reason=parsed.problem.message,
                entry=entry.id,
            )
            return "dead_lettered"
        tally.records = len(parsed.records) + len(parsed.rejected)
        for rejected in parsed.rejected:
            self._dead_letter_invalid(rejected, source, tally)
        reason = Reason(ReasonKind.POISONED, Code.HOST_POISONED.value, HOST_POISONED_MESSAGE)
        for record in parsed.records:
            attempts = record.delivery.transient_attempts + self.policy.max_dequeue_count
            entry = dead_letter_record(
                self.dead_letters, record, reason=reason, source=source, now=self.clock.now(), attempts=attempts
            )
            tally.dead_lettered += 1
            event(
                log,
                logging.ERROR,
                "record.dead_lettered",
                message_id=message.id,
                ref=record.ref,
                kind=ReasonKind.POISONED.value,
                code=Code.HOST_POISONED.value,
                environment=record.environment,
                table=record.table,
                entry=entry.id,
            )
        return "dead_lettered"

    def _dead_letter_invalid(self, rejected: RejectedRecord, source: Source, tally: Tally) -> None:
        entry = dead_letter_rejected(self.dead_letters, rejected, source=source, now=self.clock.now())
        tally.dead_lettered += 1
        event(
            log,
            logging.WARNING,
            "record.invalid",
            message_id=source.message_id,
            ref=rejected.ref,
            code=rejected.problem.code.value,
            path=rejected.problem.path or None,
            reason=rejected.problem.message,
            entry=entry.id,
        )


def _original_source(original: Mapping[str, Any], message: IncomingMessage) -> Source:
    count = original.get("dequeue_count")
    return Source(
        queue=_text(original.get("queue")) or message.queue,
        message_id=_text(original.get("message_id")) or message.id,
        dequeue_count=count if isinstance(count, int) else None,
        inserted_on=_text(original.get("inserted_on")),
    )


def _cause_as_result(ref: str, cause: PoisonCause) -> WriteResult:
    return WriteResult(ref, Outcome.TRANSIENT, cause.status, cause.code, cause.message, cause.request_id)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
