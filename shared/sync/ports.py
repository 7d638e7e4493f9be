"""Interfaces (ports) between the pure sync core and the adapters at the edges.

The Dataverse client (shared/dataverse) implements `DataverseWriter`; queue adapters (shared/queues) implement
the sinks. Types here are plain data so the core stays free of I/O libraries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
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


# --- Ports of the handlers (queue side, time, health) --------------------------------------------------------
# Added for the records/poison/bulk/health handlers. Adapters: shared/queues (Azure Storage queues), the
# composition root (clock), the Dataverse/identity side (EnvironmentProbe). Tests use in-memory fakes.


@dataclass(frozen=True)
class IncomingMessage:
    """A queue message as a handler sees it, whatever delivered it (Functions trigger, bulk receive, tests).

    `body` is the decoded payload: the adapters undo the queue's base64 (the trigger adapter, as host.json
    `messageEncoding` is `none`, and the bulk source alike). `receipt` is the pop receipt when the message can be
    deleted by us (bulk source); None for trigger messages, which the host deletes when the function returns.
    """

    id: str
    body: bytes
    dequeue_count: int  # 1 on the first delivery (QueueMessage.dequeue_count)
    queue: str
    inserted_on: datetime | None = None
    receipt: str | None = None
    encoding_error: str | None = None  # set by an adapter that could not undo the queue encoding (body = raw)


class QueueSender(Protocol):
    """Sends a message to one of the app's queues (names in shared/queues/names.py).

    The adapter applies the queue encoding (base64, the contract's; docs/message-contract.md#encoding) and raises
    on failure.
    """

    def send(self, queue: str, text: str, *, delay_seconds: int = 0) -> str:
        """Send `text` (JSON, already within the size limit); invisible for `delay_seconds`. Returns its id."""
        ...


class DeadLetterSink(Protocol):
    """Stores dead-letter entries (JSON text, at most MAX_MESSAGE_JSON_BYTES) so that they never expire."""

    def put(self, entry_json: str) -> str:
        """Store one entry; returns the queue message id. Raises when it could not be stored."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall-clock time (timestamps in dead letters, certificate expiry)."""
        ...

    def monotonic(self) -> float:
        """time.monotonic()-compatible seconds (deadlines handed to the writer)."""
        ...


class BulkMessageSource(Protocol):
    """Receives and settles messages of the bulk queue (the timer drains it; no host trigger is involved)."""

    def receive(self, max_messages: int, *, visibility_timeout_seconds: int) -> list[IncomingMessage]:
        """Up to `max_messages` (≤ 32 per call, the service limit) messages, hidden for the timeout."""
        ...

    def delete(self, message: IncomingMessage) -> None:
        """Delete a received message (all its records are settled)."""
        ...

    def release(self, message: IncomingMessage, *, delay_seconds: int) -> None:
        """Make a received message visible again after `delay_seconds` (its records are to be retried)."""
        ...


class QueueDepth(Protocol):
    def approximate_count(self, queue: str) -> int:
        """Approximate number of messages in `queue` (0 when it does not exist)."""
        ...


@dataclass(frozen=True)
class CheckResult:
    """One health check of one environment: ok, or the error (never a secret) and how long it took."""

    ok: bool
    detail: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class ProbeReport:
    """What the Dataverse/identity side reports about one environment for the health check."""

    certificate_not_after: datetime | None  # expiry of the app registration's certificate (from Key Vault)
    certificate_thumbprint: str | None  # SHA-1 hex, to tell versions apart (public, not a secret)
    certificate: CheckResult  # could the certificate be read from Key Vault?
    token: CheckResult  # could a token for the environment be acquired?
    who_am_i: CheckResult  # did GET WhoAmI answer? detail: the application user's UserId
    organization_id: str | None = None


class EnvironmentProbe(Protocol):
    """Implemented by the Dataverse/identity side; never raises for a failed check (it reports it)."""

    def probe(self, environment: str) -> ProbeReport: ...
