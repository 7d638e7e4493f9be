"""Compare what the demo found in Dataverse and in the queues with what its records had to become.

`verify()` is pure: it takes the expected rows (expectations.py), the expected dead letters of each raw invalid
message, and what was read back (stored rows per environment and table, dead-letter entries, queue depths), and
lists every difference as a sentence. No difference means: every record that should land landed with its values
and lookups, every other record is a dead-letter entry with the right reason, and no queue holds anything.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators.dataverse.schema import Schema
from emulators.demo.expectations import REASON_OF, ExpectedRow, RowId, RowOutcome
from shared.sync.catalog import canonical_key
from shared.sync.deadletter import DeadLetter
from shared.sync.ports import JsonValue

MONEY_TOLERANCE = 0.005  # money and decimals are stored rounded to 2 digits (demo schema precision)


@dataclass(frozen=True)
class Observed:
    rows: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]  # (environment, table) -> rows as stored
    dead_letters: Sequence[DeadLetter]
    queue_depths: Mapping[str, int]  # the queues that must be empty at the end


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    landed: Counter[tuple[str, str]] = field(default_factory=Counter)  # verified rows by (environment, table)
    data_dead_letters: list[DeadLetter] = field(default_factory=list)
    message_dead_letters: list[DeadLetter] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    expected: Mapping[RowId, ExpectedRow],
    expected_codes_by_message: Mapping[str, Counter[str]],
    observed: Observed,
    schema: Schema,
) -> Verdict:
    """`expected_codes_by_message`: queue message id of each raw invalid message -> the codes it must produce."""
    verdict = Verdict()
    for entry in observed.dead_letters:
        if entry.source.message_id in expected_codes_by_message:
            verdict.message_dead_letters.append(entry)
        else:
            verdict.data_dead_letters.append(entry)
    stored = _index_rows(expected.values(), observed.rows)
    _check_rows(expected, stored, observed.rows, schema, verdict)
    _check_data_dead_letters(expected, verdict)
    _check_message_dead_letters(expected_codes_by_message, verdict)
    for queue, depth in observed.queue_depths.items():
        if depth:
            verdict.problems.append(f"{queue} still holds {depth} message(s)")
    return verdict


# --- rows -----------------------------------------------------------------------------------------------------


def _index_rows(
    expected: Iterable[ExpectedRow], rows: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]
) -> dict[RowId, Mapping[str, Any]]:
    """Stored rows by the same identity the expectations use (key columns taken from the expected rows)."""
    key_columns = {(row.environment, row.table): tuple(row.key) for row in expected}
    index: dict[RowId, Mapping[str, Any]] = {}
    for (environment, table), stored in rows.items():
        columns = key_columns.get((environment, table))
        if not columns:
            continue
        for row in stored:
            key = {column: row.get(column) for column in columns}
            if all(value is not None for value in key.values()):
                index[(environment, table, canonical_key(key))] = row  # type: ignore[arg-type]
    return index


def _check_rows(
    expected: Mapping[RowId, ExpectedRow],
    stored: Mapping[RowId, Mapping[str, Any]],
    rows: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    schema: Schema,
    verdict: Verdict,
) -> None:
    for row_id, row in expected.items():
        found = stored.get(row_id)
        where = describe_row(row)
        if row.outcome is RowOutcome.LANDED:
            if found is None:
                verdict.problems.append(f"{where} should have landed but is not in Dataverse")
                continue
            verdict.landed[(row.environment, row.table)] += 1
            if row.values_are_determined:
                verdict.problems.extend(f"{where}: {p}" for p in _value_problems(row, found, stored, schema))
        elif found is not None:
            verdict.problems.append(f"{where} should be {row.outcome.value} but is in Dataverse")
    for (environment, table), table_rows in rows.items():
        asked_for = sum(1 for row_id in stored if row_id[:2] == (environment, table) and row_id in expected)
        if len(table_rows) > asked_for:
            verdict.problems.append(
                f"{environment}/{table} holds {len(table_rows) - asked_for} row(s) no record asked for"
            )


def _value_problems(
    row: ExpectedRow, found: Mapping[str, Any], stored: Mapping[RowId, Mapping[str, Any]], schema: Schema
) -> list[str]:
    problems = [
        f"{column} is {found.get(column)!r}, expected {value!r}"
        for column, value in row.data.items()
        if not same_value(found.get(column), value)
    ]
    table = schema.tables[row.table]
    for navigation, target_id in row.lookups.items():
        column, target = table.navigations[navigation]
        parent = stored.get(target_id)
        parent_id = parent.get(schema.tables[target.table].primary_id) if parent else None
        if (
            parent_id is None
            or found.get(column.name) != parent_id
            or found.get(f"{column.name}@table") != target.table
        ):
            problems.append(f"lookup {navigation} does not point at its parent {target.table} row")
    return problems


def same_value(stored: Any, sent: JsonValue) -> bool:
    if isinstance(sent, float) or (isinstance(stored, float) and isinstance(sent, int) and not isinstance(sent, bool)):
        return isinstance(stored, int | float) and abs(float(stored) - float(sent)) <= MONEY_TOLERANCE
    return bool(stored == sent and type(stored) is type(sent))


def describe_row(row: ExpectedRow) -> str:
    key = ",".join(str(value) for value in row.key.values())
    return f"{row.environment}/{row.table} {key}"


# --- dead letters ---------------------------------------------------------------------------------------------


def _check_data_dead_letters(expected: Mapping[RowId, ExpectedRow], verdict: Verdict) -> None:
    entries_by_row: dict[RowId, list[DeadLetter]] = defaultdict(list)
    for entry in verdict.data_dead_letters:
        row_id = _row_of(entry)
        if row_id is None or row_id not in expected:
            verdict.problems.append(f"unexpected dead letter {entry.id}: {entry.reason.kind.value}/{entry.reason.code}")
            continue
        entries_by_row[row_id].append(entry)
    for row_id, row in expected.items():
        entries = entries_by_row.get(row_id, [])
        low, high = row.dead_letter_range
        if not low <= len(entries) <= high:
            wanted = f"{low}" if low == high else f"{low} to {high}"
            verdict.problems.append(f"{describe_row(row)}: {len(entries)} dead-letter entries, expected {wanted}")
            continue
        if row.outcome is RowOutcome.LANDED:
            continue
        for entry in entries:
            reason = (entry.reason.kind.value, entry.reason.code)
            if reason != REASON_OF[row.outcome]:
                verdict.problems.append(f"{describe_row(row)}: dead-lettered as {'/'.join(reason)}, expected "
                                        f"{'/'.join(REASON_OF[row.outcome])}")  # fmt: skip
            elif row.dataverse_code and (entry.dataverse is None or entry.dataverse.code != row.dataverse_code):
                got = entry.dataverse.code if entry.dataverse else None
                verdict.problems.append(f"{describe_row(row)}: Dataverse code {got}, expected {row.dataverse_code}")


def _row_of(entry: DeadLetter) -> RowId | None:
    record = entry.record
    key = record.get("key") if record is not None else None
    if not entry.environment or not entry.table or not isinstance(key, dict) or not key:
        return None
    return entry.environment, entry.table, canonical_key(key)  # type: ignore[arg-type]


def _check_message_dead_letters(expected: Mapping[str, Counter[str]], verdict: Verdict) -> None:
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in verdict.message_dead_letters:
        found[entry.source.message_id][entry.reason.code] += 1
    for message_id, codes in expected.items():
        if found.get(message_id, Counter()) != codes:
            got = dict(found.get(message_id, Counter()))
            verdict.problems.append(f"message {message_id}: dead-letter codes {got}, expected {dict(codes)}")
