"""Running a plan through the writer port, wave by wave, and sorting every record into its outcome.

One writer call per environment per wave, with the wave's records ordered by (table, operation) so that the
writer sees each (environment, table, operation) group contiguously and can turn it into bulk requests. A child
whose parent in the same plan did not get written for a transient reason is not attempted (it would only fail
on the missing parent); it is carried over with its parent. Work not begun by the deadline is TRANSIENT too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from shared.sync.catalog import to_write
from shared.sync.contract import Record
from shared.sync.logs import event, logger
from shared.sync.planning import Plan
from shared.sync.ports import Clock, DataverseWriter, Outcome, WriteResult

log = logger("execution")

DEADLINE_MESSAGE = "not attempted: the invocation's time budget (SYNC_TIME_BUDGET_SECONDS) ran out"
PARENT_PENDING_MESSAGE = "not attempted: its parent in the same batch was not written yet (transient failure)"
WRITER_RAISED_PREFIX = "writer raised "  # + the exception class: the records handler reports it as the error class


@dataclass
class Execution:
    """Results by ref. Records that were never handed to the writer get a synthetic TRANSIENT result."""

    results: dict[str, WriteResult] = field(default_factory=dict)
    requests: int = 0  # writer calls (not HTTP requests)

    def outcome(self, record: Record) -> WriteResult:
        return self.results[record.ref]


def execute(plan: Plan, writer: DataverseWriter, *, deadline: float, clock: Clock) -> Execution:
    execution = Execution()
    for wave in plan.waves:
        ready: dict[str, list[Record]] = defaultdict(list)
        for record in wave:
            skipped = _reason_to_skip(record, plan, execution, deadline, clock)
            if skipped is not None:
                execution.results[record.ref] = WriteResult(record.ref, Outcome.TRANSIENT, message=skipped)
            else:
                ready[record.environment or ""].append(record)
        for environment, records in ready.items():
            _write(environment, records=records, writer=writer, deadline=deadline, clock=clock, execution=execution)
    return execution


def _reason_to_skip(record: Record, plan: Plan, execution: Execution, deadline: float, clock: Clock) -> str | None:
    for parent in plan.parents.get(record.ref, ()):
        result = execution.results.get(parent)
        if result is not None and result.outcome is Outcome.TRANSIENT:
            return PARENT_PENDING_MESSAGE
    if clock.monotonic() >= deadline:
        return DEADLINE_MESSAGE
    return None


def _write(
    environment: str,
    *,
    records: list[Record],
    writer: DataverseWriter,
    deadline: float,
    clock: Clock,
    execution: Execution,
) -> None:
    records.sort(key=lambda r: (r.table, r.operation.value))
    if clock.monotonic() >= deadline:
        for record in records:
            execution.results[record.ref] = WriteResult(record.ref, Outcome.TRANSIENT, message=DEADLINE_MESSAGE)
        return
    execution.requests += 1
    try:
        results = writer.write(environment, [to_write(r) for r in records], deadline=deadline)
    except Exception as exc:  # the port promises not to raise; if it does, nothing is lost: retry the records
        log.exception("writer raised for environment %s; its %d records will be retried", environment, len(records))
        failure = WRITER_RAISED_PREFIX + type(exc).__name__
        for record in records:
            execution.results[record.ref] = WriteResult(record.ref, Outcome.TRANSIENT, message=failure)
        return
    expected = {r.ref for r in records}
    for result in results:
        if result.ref in expected:
            execution.results[result.ref] = result
    missing = [r.ref for r in records if r.ref not in execution.results]
    if missing:
        event(log, logging.ERROR, "writer.missing_results", environment=environment, count=len(missing))
        for ref in missing:
            execution.results[ref] = WriteResult(ref, Outcome.TRANSIENT, message="the writer returned no result")
