"""Rows of one environment, indexed by primary id and by every alternate key, with transactions.

Every write goes through a `Transaction` that keeps an undo log, so a change set, a bulk action or a single
request either commits or rolls back completely (Dataverse runs each in one SQL transaction: PAD/bulk-operations.md,
PAD/webapi/execute-batch-operations-using-web-api.md). All access happens on the server's one event loop with no
awaits inside a transaction, so no locks are needed.

Key values are compared case-insensitively, as Dataverse's SQL collation does (inference: unique indexes on a
case-insensitive collation). A key with any null part is not indexed (several rows may leave a key empty).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from emulators.dataverse import errors
from emulators.dataverse.schema import AlternateKey, Schema, Table

Row = dict[str, Any]
KeyTuple = tuple[Any, ...]


class TableData:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.rows: dict[str, Row] = {}
        self.key_indexes: list[tuple[AlternateKey, dict[KeyTuple, str]]] = [(k, {}) for k in table.keys]
        self._index_by_key = {id(k): index for k, index in self.key_indexes}
        self.deleted: list[tuple[int, str]] = []  # (version of the delete, id): change tracking's deletions

    @staticmethod
    def key_tuple(key: AlternateKey, values: Mapping[str, Any]) -> KeyTuple | None:
        parts = []
        for column in key.columns:
            value = values.get(column)
            if value is None:
                return None
            parts.append(value.casefold() if type(value) is str else value)
        return tuple(parts)

    def find_by_key(self, key: AlternateKey, values: Mapping[str, Any]) -> str | None:
        parts = self.key_tuple(key, values)
        return None if parts is None else self._index_by_key[id(key)].get(parts)

    def _check_unique(self, row: Mapping[str, Any], record_id: str) -> list[tuple[dict[KeyTuple, str], KeyTuple]]:
        """The index entries `row` needs; raises DuplicateRecordEntityKey if another row holds one of them."""
        entries = []
        for key, index in self.key_indexes:
            parts = self.key_tuple(key, row)
            if parts is not None:
                if index.get(parts, record_id) != record_id:
                    raise errors.duplicate_key([row.get(c) for c in key.columns], key.name)
                entries.append((index, parts))
        return entries

    def _index(self, row: Mapping[str, Any], record_id: str) -> None:
        for key, index in self.key_indexes:
            parts = self.key_tuple(key, row)
            if parts is not None:
                index[parts] = record_id

    def _unindex(self, row: Mapping[str, Any]) -> None:
        for key, index in self.key_indexes:
            parts = self.key_tuple(key, row)
            if parts is not None:
                index.pop(parts, None)

    def clear(self) -> None:
        self.rows.clear()
        self.deleted.clear()
        for _, index in self.key_indexes:
            index.clear()


class Store:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.tables = {name: TableData(table) for name, table in schema.tables.items()}
        # Row versions are org-wide and only grow, like Dataverse's versionnumber (a SQL rowversion).
        self.version = 1_000_000
        # Row ids: a random prefix per environment plus a counter, like Dataverse's sequential GUIDs (and much
        # cheaper than uuid4 on the bulk path).
        self._id_prefix = str(uuid.uuid4())[:24]
        self._id_counter = 0

    def new_id(self) -> str:
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter:012x}"

    def next_version(self) -> int:
        self.version += 1
        return self.version

    def data(self, logical_name: str) -> TableData:
        return self.tables[logical_name]

    def transaction(self) -> Transaction:
        return Transaction(self)

    def clear(self) -> None:
        for data in self.tables.values():
            data.clear()


class Transaction:
    """Undo log over a Store. Use `with store.transaction() as txn:`; an exception rolls everything back."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.rollback()
        else:
            self.commit()

    def commit(self) -> None:
        self._undo.clear()

    def rollback(self) -> None:
        while self._undo:
            self._undo.pop()()

    def insert(self, data: TableData, row: Row) -> None:
        record_id = row[data.table.primary_id]
        if record_id in data.rows:
            raise errors.duplicate_record()
        for index, parts in data._check_unique(row, record_id):
            index[parts] = record_id
        data.rows[record_id] = row

        def undo() -> None:
            data._unindex(row)
            del data.rows[record_id]

        self._undo.append(undo)

    def update(self, data: TableData, record_id: str, changes: Mapping[str, Any]) -> Row:
        old = data.rows[record_id]
        new = {**old, **changes}
        key_changed = any(c in changes for k, _ in data.key_indexes for c in k.columns)
        if key_changed:
            data._check_unique(new, record_id)
            data._unindex(old)
            data._index(new, record_id)
        data.rows[record_id] = new

        def undo() -> None:
            if key_changed:
                data._unindex(new)
                data._index(old, record_id)
            data.rows[record_id] = old

        self._undo.append(undo)
        return new

    def delete(self, data: TableData, record_id: str, version: int) -> None:
        old = data.rows.pop(record_id)
        data._unindex(old)
        data.deleted.append((version, record_id))

        def undo() -> None:
            data.deleted.pop()
            data.rows[record_id] = old
            data._index(old, record_id)

        self._undo.append(undo)


def rows_sorted(rows: Iterable[Row], primary_id: str) -> list[Row]:
    """Dataverse returns rows in primary key order when no $orderby is given."""
    return sorted(rows, key=lambda r: r[primary_id])
