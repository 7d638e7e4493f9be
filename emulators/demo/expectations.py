"""What the demo's records must become, worked out from the records themselves (no Dataverse involved).

For every row the records address (environment, table, alternate key):
- the winning record: highest `sequence`, later arrival on ties (the contract's coalescing rule);
- *rejected* when the emulated Dataverse refuses one of its values (the demo schema's column rules, checked with
  the emulator's own column validators: too long, not an option of a choice, wrong type);
- *missing parent* when a lookup target never lands: the least fixed point of "lands if not rejected and every
  lookup target lands", so a child of a rejected or absent parent (ACC-99999 in the sample) and a cycle of
  records that look each other up (neither can be created first) both end as `missing_parent`;
- *landed* otherwise.

A row written by several records in one message is coalesced to one write (the others are superseded); records
of one row in different messages are written, or dead-lettered, each on its own, in an order the queue does not
guarantee. So such a row's stored values are only checked when its records shared a message, and its dead-letter
count may be anything from 1 to the number of messages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from emulators.dataverse import errors
from emulators.dataverse.schema import Schema
from shared.sync.catalog import lookup_identity, record_identity
from shared.sync.contract import Record
from shared.sync.ports import JsonValue, KeyValue
from shared.sync.problems import Code, ReasonKind

RowId = tuple[str, str, tuple[tuple[str, object], ...]]  # (environment, table, canonical key), as the planner


class RowOutcome(StrEnum):
    LANDED = "landed"
    REJECTED = "rejected"
    MISSING_PARENT = "missing_parent"


# The dead-letter reason (kind, code) each failed outcome must carry (docs/message-contract.md#reasons).
REASON_OF = {
    RowOutcome.REJECTED: (ReasonKind.REJECTED.value, Code.DATAVERSE_REJECTED.value),
    RowOutcome.MISSING_PARENT: (ReasonKind.MISSING_PARENT.value, Code.PARENT_NOT_FOUND.value),
}


@dataclass(frozen=True)
class ExpectedRow:
    environment: str
    table: str
    key: Mapping[str, KeyValue]  # as the winning record sent it
    outcome: RowOutcome
    records: int  # records sent for this row
    messages: int  # distinct queue messages they travelled in
    data: Mapping[str, JsonValue] = field(default_factory=dict)  # the winning record's columns
    lookups: Mapping[str, RowId] = field(default_factory=dict)  # navigation property -> target row
    dataverse_code: str | None = None  # the error code a rejected row must come back with

    @property
    def values_are_determined(self) -> bool:
        """One message carried all its records, so the winner's values are what Dataverse must hold."""
        return self.messages == 1

    @property
    def dead_letter_range(self) -> tuple[int, int]:
        """How many dead-letter entries this row may produce: one per message that carried it, at least one."""
        if self.outcome is RowOutcome.LANDED:
            return 0, 0
        return 1, self.messages


@dataclass(frozen=True)
class SentRecord:
    """A record as the producer helper sent it, and which message (an index of the send report) carried it."""

    record: Record
    message: int


def expect_rows(sent: Sequence[SentRecord], schema: Schema) -> dict[RowId, ExpectedRow]:
    """The expected outcome of every row `sent` addresses (records without a key are not supported here)."""
    by_row: dict[RowId, list[tuple[int, SentRecord]]] = {}
    for arrival, item in enumerate(sent):
        identity = record_identity(item.record)
        if identity is None:
            raise ValueError(f"record {item.record.ref} has no key or environment: the demo sends keyed records")
        by_row.setdefault(identity, []).append((arrival, item))
    winners = {row: _winner(items) for row, items in by_row.items()}
    rejected = {row: code for row, record in winners.items() if (code := refusal(record, schema)) is not None}
    landed = _landing_rows(winners, rejected)
    expected: dict[RowId, ExpectedRow] = {}
    for row, record in winners.items():
        if row in rejected:
            outcome = RowOutcome.REJECTED
        elif row in landed:
            outcome = RowOutcome.LANDED
        else:
            outcome = RowOutcome.MISSING_PARENT
        items = by_row[row]
        expected[row] = ExpectedRow(
            environment=row[0],
            table=record.table,
            key=record.key,
            outcome=outcome,
            records=len(items),
            messages=len({item.message for _, item in items}),
            data=record.data,
            lookups=_lookup_rows(record),
            dataverse_code=rejected.get(row),
        )
    return expected


def _winner(items: list[tuple[int, SentRecord]]) -> Record:
    """Highest sequence wins; a record with a sequence beats one without; the later arrival wins ties."""
    _, best = max(items, key=lambda pair: (pair[1].record.sequence is not None, pair[1].record.sequence or 0, pair[0]))
    return best.record


def _lookup_rows(record: Record) -> dict[str, RowId]:
    environment = record.environment or ""
    return {name: lookup_identity(environment, lookup) for name, lookup in record.lookups.items()}


def refusal(record: Record, schema: Schema) -> str | None:
    """The Dataverse error code the emulator answers for one of the record's values, or None if all are valid.

    Uses the emulator's compiled column validators, so the expectation follows the same schema file
    (emulators/dataverse/demo_schema.json) and the same documented errors (e.g. 0x80044331 for too long).
    """
    table = schema.tables.get(record.table)
    if table is None:
        return None
    for column, value in record.data.items():
        validate = table.coercers.get(column)
        if validate is None:
            continue  # unknown or read-only columns are not in the sample data
        try:
            validate(value)
        except errors.DataverseError as exc:
            return exc.code
    return None


def _landing_rows(winners: Mapping[RowId, Record], rejected: Mapping[RowId, str]) -> set[RowId]:
    """The least fixed point: a row lands when it is not rejected and every row it looks up lands."""
    pending = {
        row: set(_lookup_rows(record).values()) - {row} for row, record in winners.items() if row not in rejected
    }
    landed: set[RowId] = set()
    changed = True
    while changed:
        changed = False
        for row, parents in list(pending.items()):
            if parents <= landed:
                landed.add(row)
                del pending[row]
                changed = True
    return landed


# --- summaries of expectations ------------------------------------------------------------------------------


def landed_counts(rows: Iterable[ExpectedRow]) -> Counter[tuple[str, str]]:
    """Rows that must be in Dataverse, by (environment, table)."""
    return Counter((row.environment, row.table) for row in rows if row.outcome is RowOutcome.LANDED)


def outcome_counts(rows: Iterable[ExpectedRow]) -> Counter[tuple[str, str, RowOutcome]]:
    return Counter((row.environment, row.table, row.outcome) for row in rows)
