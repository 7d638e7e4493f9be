"""Planning a batch of resolved records: coalesce repeated keys, then order parents before children.

Coalescing: records addressing the same row (environment, table, key compared as Dataverse does) collapse to
one; the highest `sequence` wins, and among equal or missing sequences the later arrival wins. A record with a
sequence outranks one without. The losers are *superseded*: not written, reported with the winner's ref so
none disappears silently.

Ordering: a record whose lookup targets another record of the same batch (same environment, table and key)
is written in a later wave than that parent. Waves are the longest-path layering of that graph; a cycle
(account -> primary contact -> parent account) is broken at the record with the fewest unplaced parents, whose
lookup may then fail as DEPENDENCY and be retried later, when its parent exists.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.sync.catalog import RowIdentity, lookup_identity, record_identity
from shared.sync.contract import Record
from shared.sync.ports import Operation


@dataclass(frozen=True)
class Superseded:
    record: Record
    by: Record


@dataclass(frozen=True)
class Plan:
    waves: list[list[Record]]
    superseded: list[Superseded]
    parents: dict[str, list[str]] = field(default_factory=dict)  # child ref -> refs of parents in this plan
    cycle_breaks: list[str] = field(default_factory=list)  # refs placed before some of their parents

    @property
    def records(self) -> list[Record]:
        return [record for wave in self.waves for record in wave]


def plan(records: Sequence[Record]) -> Plan:
    """Plan resolved records given in arrival order (environment set on every record)."""
    identities = {id(record): record_identity(record) for record in records}
    winners, superseded = coalesce(records, identities)
    parents = _parents(winners, identities)
    waves, breaks = _waves(winners, parents)
    return Plan(waves, superseded, parents, breaks)


def coalesce(
    records: Sequence[Record], identities: dict[int, RowIdentity | None]
) -> tuple[list[Record], list[Superseded]]:
    rows: list[object] = [identities[id(record)] or ("ref", record.ref) for record in records]
    best: dict[object, tuple[tuple[bool, int, int], Record]] = {}  # in order of first arrival (updates keep it)
    for arrival, (record, row) in enumerate(zip(records, rows, strict=True)):
        rank = (record.sequence is not None, record.sequence or 0, arrival)
        current = best.get(row)
        if current is None or rank > current[0]:
            best[row] = (rank, record)
    winners = [record for _, record in best.values()]
    superseded = [
        Superseded(record, winner)
        for record, row in zip(records, rows, strict=True)
        if (winner := best[row][1]) is not record
    ]
    return winners, superseded


def _parents(records: Sequence[Record], identities: dict[int, RowIdentity | None]) -> dict[str, list[str]]:
    writers_of_rows = {
        identity: record.ref
        for record in records
        if record.operation is not Operation.DELETE and (identity := identities[id(record)]) is not None
    }
    parents: dict[str, list[str]] = {}
    for record in records:
        if record.environment is None:
            continue
        found = {
            parent
            for lookup in record.lookups.values()
            if (parent := writers_of_rows.get(lookup_identity(record.environment, lookup))) is not None
            and parent != record.ref
        }
        if found:
            parents[record.ref] = sorted(found)
    return parents


def _waves(records: Sequence[Record], parents: dict[str, list[str]]) -> tuple[list[list[Record]], list[str]]:
    by_ref = {record.ref: record for record in records}
    waiting = {ref: len(parents.get(ref, ())) for ref in by_ref}
    children: dict[str, list[str]] = defaultdict(list)
    for child, its_parents in parents.items():
        for parent in its_parents:
            children[parent].append(child)
    level: dict[str, int] = {}
    ready = deque(ref for ref in by_ref if waiting[ref] == 0)
    breaks: list[str] = []
    while len(level) < len(by_ref):
        if not ready:  # only cycles (and what hangs below them) are left
            chosen = _record_on_a_cycle(records, parents, level)
            breaks.append(chosen)
            ready.append(chosen)
        ref = ready.popleft()
        if ref in level:
            continue
        level[ref] = 1 + max((level[p] for p in parents.get(ref, ()) if p in level), default=-1)
        for child in children.get(ref, ()):
            waiting[child] -= 1
            if waiting[child] == 0 and child not in level:
                ready.append(child)
    waves: list[list[Record]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for record in records:
        waves[level[record.ref]].append(record)
    return [wave for wave in waves if wave], breaks


def _record_on_a_cycle(records: Sequence[Record], parents: dict[str, list[str]], placed: dict[str, int]) -> str:
    """Walk up unplaced parents from the earliest unplaced record; every such record has one (else it would be
    ready), so the walk repeats, and the first repeated record lies on a cycle."""
    ref = next(record.ref for record in records if record.ref not in placed)
    seen: set[str] = set()
    while ref not in seen:
        seen.add(ref)
        ref = next(p for p in parents[ref] if p not in placed)
    return ref
