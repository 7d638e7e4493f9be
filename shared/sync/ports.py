"""Interfaces (ports) between the pure sync core and the adapters at the edges.

The Dataverse client (shared/dataverse) implements `DataverseWriter`; queue adapters (shared/queues) implement
the sinks. Types here are plain data so the core stays free of I/O libraries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

JsonScalar = str | int | float | bool | None
JsonValue = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]
KeyValue = str | int | float | bool
"""Alternate-key column types Dataverse allows: string, integer, decimal, datetime (ISO string), lookup (GUID
string), choice (int). https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity"""


class Operation(StrEnum):
    UPSERT = "upsert"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Lookup:
    """A single-valued navigation property pointing at another row, by its alternate key or primary id."""

    table: str  # logical name of the target table, e.g. "account"
    key: Mapping[str, KeyValue]  # {"accountnumber": "A-1"} or {"accountid": "<guid>"}


@dataclass(frozen=True)
class RecordWrite:
    """One row to write. `ref` is the caller's handle: results come back with the same ref."""

    ref: str
    table: str  # logical name, e.g. "contact"
    operation: Operation
    key: Mapping[str, KeyValue]  # alternate-key columns, or {primary id column: guid}; may be empty for create
    data: Mapping[str, JsonValue] = field(default_factory=dict)  # column logical name -> value
    lookups: Mapping[str, Lookup] = field(default_factory=dict)  # navigation property -> target row
    caller_object_id: str | None = None  # impersonate this Entra user (CallerObjectId header)


class Outcome(StrEnum):
    WRITTEN = "written"  # Dataverse accepted the write
    PERMANENT = "permanent"  # can never succeed as sent: validation, privilege, duplicate key, not found...
    DEPENDENCY = "dependency"  # a lookup target does not exist (yet): retry later, bounded
    TRANSIENT = "transient"  # throttled past the time budget, outage, timeout, token trouble: retry the message


@dataclass(frozen=True)
class WriteResult:
    ref: str
    outcome: Outcome
    status: int | None = None  # HTTP status Dataverse answered for this record, if any
    code: str | None = None  # Dataverse error code, e.g. "0x80044331"
    message: str | None = None  # Dataverse error message (never contains secrets)
    request_id: str | None = None  # Dataverse request id, for correlation with its logs


class DataverseWriter(Protocol):
    """Writes rows to one named environment (DATAVERSE_ENVIRONMENTS key)."""

    def write(self, environment: str, writes: Sequence[RecordWrite], *, deadline: float) -> list[WriteResult]:
        """Return exactly one result per write, in any order, matched by `ref`.

        Never raises for a record's own failure. `deadline` is a time.monotonic() value: work not started by
        then comes back TRANSIENT. Failures of the whole environment (token, Key Vault, outage past the
        deadline) come back TRANSIENT for every affected record, with the cause in `message`.
        """
        ...
