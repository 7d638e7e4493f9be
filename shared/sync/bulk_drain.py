"""Bulk drain (timer): many small messages from BULK_QUEUE, coalesced across messages into full bulk requests.

The queue trigger hands over one message at a time, so it cannot batch across messages; this timer does. A run
drains the queue in rounds. A round receives messages (32 per call, the service maximum) until it holds
BULK_DRAIN_MAX_RECORDS records, the queue is empty, or a third of the time budget is spent; then plans all their
records as one batch (coalescing the same row across messages, newest wins, in insertion order) and writes them.
Rounds follow one another until the queue is empty, a round had to release messages (transient trouble: let
the retry delay pass), or half the run's time budget is spent (a round started later could not finish within
it); so one timer run moves a backlog at the writer's pace instead of one round per schedule period.

Each message is then settled on its own:
- every record written, dead-lettered, re-scheduled or superseded -> the message is deleted;
- some records transient after others settled -> a continuation with only those goes back to the bulk queue,
  then the message is deleted (re-sending it whole would repeat creates and deletes);
- nothing settled -> the message is released to reappear after the retry delay; on the last allowed attempt
  (as the records queue's maxDequeueCount) its records go to the poison queue with the cause instead.
Messages stay invisible for the whole run (visibility timeout > time budget), so no other run takes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.queues.names import RECORDS_POISON_QUEUE
from shared.sync.engine import SyncEngine, Tally, Unit
from shared.sync.logs import event, logger
from shared.sync.ports import BulkMessageSource, IncomingMessage
from shared.sync.records_handler import pending_attempt, send_continuation, write_poison_envelope

log = logger("bulk")

RECEIVE_BATCH = 32  # Get Messages: numofmessages at most 32 (learn.microsoft.com/rest/api/storageservices/get-messages)
RECEIVE_SHARE_OF_BUDGET = 1 / 3
NEW_ROUND_SHARE_OF_BUDGET = 1 / 2  # no round starts after this share of the run's time budget
VISIBILITY_MARGIN_SECONDS = 60
FIRST_GUESS_RECORDS_PER_MESSAGE = 100


@dataclass
class DrainReport:
    tally: Tally
    deleted: int = 0
    released: int = 0
    seconds: float = 0.0
    queue_empty: bool = False
    rounds: int = 0

    def add(self, round_report: DrainReport) -> None:
        self.tally.add(round_report.tally)
        self.deleted += round_report.deleted
        self.released += round_report.released
        self.queue_empty = round_report.queue_empty
        self.rounds += 1


@dataclass(frozen=True)
class BulkDrain:
    engine: SyncEngine
    source: BulkMessageSource
    poison_queue: str = RECORDS_POISON_QUEUE

    def run(self) -> DrainReport:
        """Drain in rounds (see the module docstring); the report sums them."""
        start = self.engine.clock.monotonic()
        deadline = start + self.engine.policy.time_budget_seconds
        last_round_start = start + self.engine.policy.time_budget_seconds * NEW_ROUND_SHARE_OF_BUDGET
        report = DrainReport(Tally())
        while True:
            round_report = self._round(deadline, report.rounds + 1)
            report.add(round_report)
            finished = round_report.queue_empty or round_report.released or not round_report.tally.messages
            if finished or self.engine.clock.monotonic() >= last_round_start:
                break
        report.seconds = self.engine.clock.monotonic() - start
        return report

    def _round(self, deadline: float, number: int) -> DrainReport:
        start = self.engine.clock.monotonic()
        units, queue_empty = self._receive(start)
        if not units:
            return DrainReport(Tally(), queue_empty=queue_empty)
        units.sort(key=lambda unit: _by_insertion(unit.message))  # coalescing: later insertion wins ties
        self.engine.settle(units, deadline=deadline)
        tally = Tally()
        deleted = released = 0
        for unit in units:
            if self._finish(unit):
                deleted += 1
            else:
                released += 1
            tally.add(unit.tally)
        seconds = self.engine.clock.monotonic() - start
        event(
            log,
            logging.INFO,
            "bulk.drained",
            messages=len(units),
            records=tally.records,
            written=tally.written,
            dead_lettered=tally.dead_lettered,
            rescheduled=tally.rescheduled,
            superseded=tally.superseded,
            retried=tally.retried,
            poisoned=tally.poisoned,
            deleted=deleted,
            released=released,
            writer_calls=tally.writer_calls,
            seconds=round(seconds, 3),
            queue_empty=queue_empty,
            round=number,
        )
        return DrainReport(tally, deleted, released, seconds, queue_empty)

    def _receive(self, start: float) -> tuple[list[Unit], bool]:
        units: list[Unit] = []
        taken_refs: set[str] = set()
        records = 0
        stop_at = start + self.engine.policy.time_budget_seconds * RECEIVE_SHARE_OF_BUDGET
        visibility = int(self.engine.policy.time_budget_seconds) + VISIBILITY_MARGIN_SECONDS
        limit = self.engine.policy.bulk_drain_max_records
        while records < limit and self.engine.clock.monotonic() < stop_at:
            # Ask for fewer messages near the limit, judging by the records per message seen so far (at first,
            # guess 100: the producer helper packs messages full).
            per_message = max(1, records // len(units)) if units else FIRST_GUESS_RECORDS_PER_MESSAGE
            wanted = max(1, min(RECEIVE_BATCH, (limit - records + per_message - 1) // per_message))
            batch = self.source.receive(wanted, visibility_timeout_seconds=visibility)
            for message in batch:
                unit = self.engine.accept(message, taken_refs)
                units.append(unit)
                records += len(unit.records)
            if len(batch) < wanted:
                return units, True
        return units, False

    def _finish(self, unit: Unit) -> bool:
        """Settle one message; True when it was deleted, False when released for a later run."""
        message, policy = unit.message, self.engine.policy
        if unit.pending:
            if unit.progressed:
                send_continuation(self.engine, unit)
            elif pending_attempt(unit) < policy.max_dequeue_count:
                unit.tally.retried += len(unit.pending)
                self.source.release(message, delay_seconds=policy.transient_retry_delay_seconds)
                return False
            else:
                write_poison_envelope(self.engine, unit, self.poison_queue)
        self.source.delete(message)
        return True


def _by_insertion(message: IncomingMessage) -> tuple[bool, float, str]:
    inserted = message.inserted_on.timestamp() if message.inserted_on else 0.0
    return message.inserted_on is None, inserted, message.id
