"""How one record travels: its bulk target (`Targets[i]` of a *Multiple action) or its `$batch` operation.

- Upsert by alternate key: bulk target `{"@odata.type", "@odata.id": "accounts(accountnumber='A-1')", ...data}`
  (webapi/reference/upsertmultiple), `$batch` `PATCH accounts(accountnumber='A-1')` (use-upsert-insert-update-record);
  the key is percent-encoded in request lines, not in body references (keys.py explains why).
  Key columns are NOT repeated in the body: with the key in both body and `@odata.id` the create path of
  UpsertMultiple fails with 0x80040216 (microsoft/PowerPlatform-DataverseClient-Python#127), and the upsert doc
  advises against it.
- Rows addressed by primary id (the caller's key, a create's client-assigned id, or an id resolved by `$filter`
  for keys that break URLs): the id goes in the body as the primary id column; `PATCH accounts(<id>)` in `$batch`.
  A row that does not exist yet is created with that id (upsert by primary key), with its key columns in the body.
- Create: `POST accounts` / CreateMultiple with a client-assigned primary id, so a retry after an ambiguous
  failure (connection reset after sending) can be checked instead of creating a duplicate.
- Update: like upsert plus `If-Match: *` in `$batch` (update only; a missing row is a 404, not a create).
- Delete: `$batch` `DELETE accounts(...)` (DeleteMultiple exists for elastic tables only, bulk-operations.md).
Lookups become `"<navigation property>@odata.bind": "/<entity set>(<key>)"` (use-alternate-key-reference-record).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.dataverse.batch import BatchOperation
from shared.dataverse.keys import record_path, record_reference
from shared.dataverse.metadata import TableMetadata
from shared.sync.ports import JsonValue, Operation, RecordWrite

BULK_ACTIONS = {
    Operation.UPSERT: "UpsertMultiple",
    Operation.CREATE: "CreateMultiple",
    Operation.UPDATE: "UpdateMultiple",
}


@dataclass
class Prepared:
    """A record ready to send: where it goes and what it carries."""

    index: int
    write: RecordWrite
    table: TableMetadata
    binds: dict[str, str] = field(default_factory=dict)  # "nav@odata.bind" -> "/entityset(key)"
    by_alternate_key: bool = False  # addressed by its alternate key (URL / @odata.id), else by record_id
    record_id: str | None = None  # addressed by primary id (given, assigned or resolved)
    new_row: bool = False  # record_id addresses a row that does not exist yet: send the key columns too

    @property
    def operation(self) -> Operation:
        return self.write.operation

    @property
    def lookup_tables(self) -> tuple[str, ...]:
        return tuple(lookup.table for lookup in self.write.lookups.values())

    def path(self) -> str:
        """The record in a request line (percent-encoded)."""
        if self.by_alternate_key:
            return record_path(self.table.entity_set, self.write.key)
        assert self.record_id is not None
        return record_path(
            self.table.entity_set, {self.table.primary_id: self.record_id}, primary_id=self.table.primary_id
        )

    def payload(self) -> dict[str, Any]:
        body: dict[str, JsonValue] = {
            column: value for column, value in self.write.data.items() if column not in self._key_columns_to_drop()
        }
        if self.new_row or self.operation is Operation.CREATE:
            body.update({c: v for c, v in self.write.key.items() if c != self.table.primary_id})
        body.update(self.binds)
        return body

    def _key_columns_to_drop(self) -> set[str]:
        # Addressed by alternate key: key columns live in the URL/@odata.id only (see the module docstring).
        return set(self.write.key) if self.by_alternate_key else set()

    def bulk_target(self) -> dict[str, Any]:
        target: dict[str, Any] = {"@odata.type": self.table.odata_type}
        if self.by_alternate_key:
            target["@odata.id"] = record_reference(self.table.entity_set, self.write.key)
        elif self.record_id is not None:
            target[self.table.primary_id] = self.record_id
        target.update(self.payload())
        return target

    def batch_operation(self, extra_headers: dict[str, str]) -> BatchOperation:
        operation = self.operation
        if operation is Operation.CREATE:
            body = {self.table.primary_id: self.record_id, **self.payload()}
            return BatchOperation("POST", self.table.entity_set, body, extra_headers)
        if operation is Operation.DELETE:
            return BatchOperation("DELETE", self.path(), None, extra_headers)
        headers = dict(extra_headers)
        if operation is Operation.UPDATE:
            headers["If-Match"] = "*"  # update only: perform-conditional-operations-using-web-api
        return BatchOperation("PATCH", self.path(), self.payload(), headers)


def assign_create_id(prepared: Prepared) -> None:
    """Creates get a client-assigned primary id unless the caller gave one (see the module docstring)."""
    given = prepared.write.key.get(prepared.table.primary_id)
    prepared.record_id = str(given).lower() if isinstance(given, str) else str(uuid.uuid4())


def bind_property(navigation_property: str) -> str:
    return f"{navigation_property}@odata.bind"
