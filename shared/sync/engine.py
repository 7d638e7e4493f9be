"""The common path of the records handler and the bulk drain: from received messages to settled records.

parse -> dead-letter what is invalid -> resolve against the catalog -> plan (coalesce, order) -> execute ->
dead-letter permanent failures, re-schedule missing parents (bounded) -> hand back what is still pending
(transient), per message, for the caller to retry in its own way (raise, continuation, release, poison).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.sync.catalog import Catalog
from shared.sync.contract import (
    Delivery,
    ParsedMessage,
    Record,
    RejectedMessage,
    RejectedRecord,
    read_message,
)
from shared.sync.deadletter import (
    DeadLetter,
    Reason,
    Source,
    dead_letter_message,
    dead_letter_record,
    dead_letter_rejected,
)
from shared.sync.envelopes import continuation_messages, record_with_delivery
from shared.sync.execution import execute
from shared.sync.logs import event, logger, refs
from shared.sync.planning import Superseded, plan
from shared.sync.policy import SyncPolicy
from shared.sync.ports import (
    Clock,
    DataverseWriter,
    DeadLetterSink,
    IncomingMessage,
    JsonValue,
    Outcome,
    QueueSender,
    WriteResult,
)
from shared.sync.problems import Code, Problem, ReasonKind

log = logger("engine")


@dataclass
class Tally:
    """Counts of what happened to records, summed over messages (reports, logs, the demo's summary)."""

    messages: int = 0
    records: int = 0
    written: int = 0
    dead_lettered: int = 0
    rescheduled: int = 0  # missing parent: sent again later
    superseded: int = 0  # coalesced away by a newer record of the same row
    retried: int = 0  # transient: continuation message, host retry or released message
    poisoned: int = 0  # transient on the last attempt: poison envelope written
    requeued: int = 0  # poison triage: sent back to the records queue
    writer_calls: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class Unit:
    """One message of a batch and what became of its records."""

    message: IncomingMessage
    records: list[Record] = field(default_factory=list)  # valid, resolved
    tally: Tally = field(default_factory=Tally)
    pending: list[tuple[Record, WriteResult]] = field(default_factory=list)  # transient, to retry

    @property
    def progressed(self) -> bool:
        """Did this delivery settle anything (written, dead-lettered, re-scheduled, superseded)?"""
        t = self.tally
        return bool(t.written or t.dead_lettered or t.rescheduled or t.superseded)


@dataclass(frozen=True)
class SyncEngine:
    """The ports and settings the records handler and the bulk drain share; holds no state between calls."""

    writer: DataverseWriter
    dead_letters: DeadLetterSink
    sender: QueueSender
    clock: Clock
    catalog: Catalog
    policy: SyncPolicy

    # --- step 1: parse and validate, per message ------------------------------------------------------------

    def accept(self, message: IncomingMessage, taken_refs: set[str] | None = None) -> Unit:
        """Parse and validate one message; dead-letter what is invalid; keep the resolved records."""
        unit = Unit(message)
        unit.tally.messages = 1
        parsed = read_message(message)
        if isinstance(parsed, RejectedMessage):
            self._dead_letter_message(unit, parsed.problem, parsed.text)
            return unit
        self._accept_records(unit, parsed, taken_refs if taken_refs is not None else set())
        return unit

    def _accept_records(self, unit: Unit, parsed: ParsedMessage, taken_refs: set[str]) -> None:
        unit.tally.records = len(parsed.records) + len(parsed.rejected)
        for rejected in parsed.rejected:
            self._dead_letter_rejected(unit, rejected)
        for record in parsed.records:
            path: tuple[str | int, ...] = () if parsed.single else ("records", record.index)
            resolved = self.catalog.resolve(record, path)
            if isinstance(resolved, Problem):
                self._dead_letter_unresolved(unit, record, resolved)
                continue
            if resolved.ref in taken_refs:  # the same continuation delivered twice into one batch
                resolved = dataclasses.replace(resolved, ref=f"{resolved.ref}@{unit.message.id}")
            taken_refs.add(resolved.ref)
            unit.records.append(resolved)

    # --- step 2: plan, write, settle ------------------------------------------------------------------------

    def settle(self, units: Sequence[Unit], *, deadline: float) -> None:
        """Write the records of `units` as one batch and settle each record; fills each unit's tally/pending."""
        unit_of = {record.ref: unit for unit in units for record in unit.records}
        batch = [record for unit in units for record in unit.records]
        if not batch:
            return
        the_plan = plan(batch)
        superseded_by: dict[str, list[str]] = defaultdict(list)
        for item in the_plan.superseded:
            superseded_by[item.by.ref].append(item.record.ref)
            unit_of[item.record.ref].tally.superseded += 1
        self._log_superseded(the_plan.superseded)
        if the_plan.cycle_breaks:
            event(log, logging.INFO, "plan.cycle", refs=refs(the_plan.cycle_breaks))
        execution = execute(the_plan, self.writer, deadline=deadline, clock=self.clock)
        units[0].tally.writer_calls += execution.requests  # counted once per batch; reports sum the tallies
        rescheduled: dict[str, list[dict[str, JsonValue]]] = defaultdict(list)
        for record in the_plan.records:
            unit = unit_of[record.ref]
            result = execution.outcome(record)
            self._settle_record(unit, record, result, superseded_by.get(record.ref, []), rescheduled)
        for queue, items in rescheduled.items():
            for text in continuation_messages(items):
                self.sender.send(queue, text, delay_seconds=self.policy.dependency_retry_delay_seconds)

    def _settle_record(
        self,
        unit: Unit,
        record: Record,
        result: WriteResult,
        superseded: list[str],
        rescheduled: dict[str, list[dict[str, JsonValue]]],
    ) -> None:
        if result.outcome is Outcome.WRITTEN:
            unit.tally.written += 1
            event(
                log,
                logging.DEBUG,
                "record.written",
                message_id=unit.message.id,
                ref=record.ref,
                request_id=result.request_id,
            )
        elif result.outcome is Outcome.PERMANENT:
            reason = Reason(ReasonKind.REJECTED, Code.DATAVERSE_REJECTED.value, _dataverse_text(result))
            self._dead_letter_record(unit, record, reason, result, superseded)
        elif result.outcome is Outcome.DEPENDENCY:
            if record.delivery.dependency_attempts >= self.policy.dependency_retry_limit:
                reason = Reason(
                    ReasonKind.MISSING_PARENT,
                    Code.PARENT_NOT_FOUND.value,
                    f"a lookup target still did not exist after {record.delivery.dependency_attempts} "
                    f"re-tries: {_dataverse_text(result)}",
                )
                self._dead_letter_record(unit, record, reason, result, superseded)
                return
            delivery = failed(record.delivery, result, self.clock, dependency=True)
            rescheduled[unit.message.queue].append(record_with_delivery(record, delivery))
            unit.tally.rescheduled += 1
            event(
                log,
                logging.WARNING,
                "record.parent_missing",
                message_id=unit.message.id,
                ref=record.ref,
                attempt=delivery.dependency_attempts,
                request_id=result.request_id,
            )
        else:
            unit.pending.append((record, result))

    # --- dead letters ---------------------------------------------------------------------------------------

    def _source(self, message: IncomingMessage) -> Source:
        inserted = message.inserted_on.isoformat() if message.inserted_on else None
        return Source(message.queue, message.id, message.dequeue_count, inserted)

    def _dead_letter_message(self, unit: Unit, problem: Problem, text: str) -> None:
        source = self._source(unit.message)
        entry = dead_letter_message(self.dead_letters, problem, text, source=source, now=self.clock.now())
        unit.tally.dead_lettered += 1
        event(
            log,
            logging.WARNING,
            "message.dead_lettered",
            message_id=unit.message.id,
            code=problem.code.value,
            path=problem.path or None,
            reason=problem.message,
            entry=entry.id,
        )

    def _dead_letter_rejected(self, unit: Unit, rejected: RejectedRecord) -> None:
        """A record that failed validation."""
        source = self._source(unit.message)
        entry = dead_letter_rejected(self.dead_letters, rejected, source=source, now=self.clock.now())
        self._count_invalid(unit, rejected.ref, rejected.problem, entry)

    def _dead_letter_unresolved(self, unit: Unit, record: Record, problem: Problem) -> None:
        """A valid record the catalog refused (environment, table or key not configured)."""
        reason = Reason.of(ReasonKind.INVALID_RECORD, problem)
        source = self._source(unit.message)
        entry = dead_letter_record(self.dead_letters, record, reason=reason, source=source, now=self.clock.now())
        self._count_invalid(unit, record.ref, problem, entry)

    def _count_invalid(self, unit: Unit, ref: str, problem: Problem, entry: DeadLetter) -> None:
        unit.tally.dead_lettered += 1
        event(
            log,
            logging.WARNING,
            "record.invalid",
            message_id=unit.message.id,
            ref=ref,
            code=problem.code.value,
            path=problem.path or None,
            reason=problem.message,
            entry=entry.id,
        )

    def _dead_letter_record(
        self, unit: Unit, record: Record, reason: Reason, result: WriteResult, superseded: list[str]
    ) -> None:
        entry = dead_letter_record(
            self.dead_letters,
            record,
            reason=reason,
            source=self._source(unit.message),
            now=self.clock.now(),
            dataverse=result,
            attempts=attempts(record, unit.message),
            superseded_refs=superseded,
        )
        unit.tally.dead_lettered += 1
        event(
            log,
            logging.WARNING,
            "record.dead_lettered",
            message_id=unit.message.id,
            ref=record.ref,
            kind=reason.kind.value,
            code=result.code,
            status=result.status,
            request_id=result.request_id,
            environment=record.environment,
            table=record.table,
            entry=entry.id,
        )

    def _log_superseded(self, superseded: list[Superseded]) -> None:
        for item in superseded:
            event(
                log,
                logging.INFO,
                "record.superseded",
                ref=item.record.ref,
                by=item.by.ref,
                sequence=item.record.sequence,
                winner_sequence=item.by.sequence,
            )


def failed(delivery: Delivery, result: WriteResult, clock: Clock, *, dependency: bool = False) -> Delivery:
    """The delivery state after a failed attempt: first failure time kept, last failure described."""
    return dataclasses.replace(
        delivery,
        dependency_attempts=delivery.dependency_attempts + (1 if dependency else 0),
        first_failure_at=delivery.first_failure_at or clock.now().isoformat(),
        last_failure=_dataverse_text(result)[:600],
    )


def attempts(record: Record, message: IncomingMessage) -> int:
    """Write attempts so far: earlier messages' (carried in delivery) plus this message's deliveries."""
    return record.delivery.transient_attempts + record.delivery.dependency_attempts + message.dequeue_count


def _dataverse_text(result: WriteResult) -> str:
    parts = [str(result.status) if result.status else None, result.code, result.message]
    return " ".join(p for p in parts if p) or result.outcome.value
