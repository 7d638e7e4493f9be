"""Dead-letter entries: the documented JSON format (`dataverse-sync/deadletter-v1`), building and reading them.

An entry says what failed (the record, or the raw message text when it could not be parsed), why (reason kind,
code, message, path; Dataverse status/code/request id), where it came from (queue, message id, dequeue count)
and when (first/last failure, attempts). Entries must fit one queue message (64 KiB after base64), so a huge
invalid message is truncated with a marker, its original size and SHA-256, never dropped.
`dead_letter_record`, `dead_letter_rejected` and `dead_letter_message` build an entry and put it to the sink: the
handlers' one way to dead-letter a parsed record, a record that failed validation, or a whole message (they count
it and log their own event).
See docs/message-contract.md#dead-letter-entries.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.sync.contract import (
    MAX_MESSAGE_JSON_BYTES,
    Delivery,
    Record,
    RejectedRecord,
    dumps_compact,
    json_size,
)
from shared.sync.ports import DeadLetterSink, JsonValue, WriteResult
from shared.sync.problems import Problem, ReasonKind

DEAD_LETTER_SCHEMA = "dataverse-sync/deadletter-v1"
TRUNCATION_MARKER = "…[truncated by dataverse-sync]"
_MAX_ERROR_MESSAGE = 2000


@dataclass(frozen=True)
class Source:
    """Where the failed record or message came from."""

    queue: str
    message_id: str
    dequeue_count: int | None = None
    inserted_on: str | None = None


@dataclass(frozen=True)
class Reason:
    kind: ReasonKind
    code: str
    message: str
    path: str = ""
    details: tuple[str, ...] = ()

    @classmethod
    def of(cls, kind: ReasonKind, problem: Problem) -> Reason:
        return cls(kind, problem.code.value, problem.message, problem.path, problem.details)


@dataclass(frozen=True)
class DataverseError:
    status: int | None
    code: str | None
    message: str | None
    request_id: str | None

    @classmethod
    def of(cls, result: WriteResult) -> DataverseError:
        return cls(result.status, result.code, result.message, result.request_id)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    dead_lettered_at: str
    reason: Reason
    source: Source
    environment: str | None = None
    table: str | None = None
    operation: str | None = None
    ref: str | None = None
    source_id: str | None = None
    record: Mapping[str, JsonValue] | None = None  # the record as the producer sent it (replayable)
    raw_message: str | None = None  # the message text, when it could not be parsed into records
    truncated: Mapping[str, JsonValue] | None = None  # {"field", "original_bytes", "sha256"} when cut to fit
    dataverse: DataverseError | None = None
    attempts: int = 0
    first_failure_at: str | None = None
    last_failure_at: str | None = None
    delivery: Mapping[str, JsonValue] | None = None  # the record's retry state (ref, attempts) when it failed
    superseded_refs: tuple[str, ...] = field(default=())  # records this one had superseded (not written either)

    # --- writing ---------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "schema": DEAD_LETTER_SCHEMA,
            "id": self.id,
            "dead_lettered_at": self.dead_lettered_at,
            "reason": _compact(
                {
                    "kind": self.reason.kind.value,
                    "code": self.reason.code,
                    "message": self.reason.message,
                    "path": self.reason.path or None,
                    "details": list(self.reason.details) or None,
                }
            ),
            "environment": self.environment,
            "table": self.table,
            "operation": self.operation,
            "ref": self.ref,
            "source_id": self.source_id,
            "record": dict(self.record) if self.record is not None else None,
            "raw_message": self.raw_message,
            "truncated": dict(self.truncated) if self.truncated is not None else None,
            "source": _compact(
                {
                    "queue": self.source.queue,
                    "message_id": self.source.message_id,
                    "dequeue_count": self.source.dequeue_count,
                    "inserted_on": self.source.inserted_on,
                }
            ),
            "dataverse": _compact(
                {
                    "status": self.dataverse.status,
                    "code": self.dataverse.code,
                    "message": self.dataverse.message,
                    "request_id": self.dataverse.request_id,
                }
            )
            if self.dataverse is not None
            else None,
            "attempts": self.attempts,
            "first_failure_at": self.first_failure_at,
            "last_failure_at": self.last_failure_at,
            "delivery": dict(self.delivery) if self.delivery is not None else None,
            "superseded_refs": list(self.superseded_refs) or None,
        }
        return _compact(out)

    def serialize(self) -> str:
        """The entry as JSON text that fits a queue message; cut to size, with a marker, if needed."""
        return dumps_compact(fit_to_message(self).to_json())

    # --- reading ---------------------------------------------------------------------------------------------

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> DeadLetter:
        """Read an entry (leniently: tooling must be able to show an entry even if it is odd)."""
        reason = _object(value.get("reason")) or {}
        source = _object(value.get("source")) or {}
        dataverse = _object(value.get("dataverse"))
        return cls(
            id=str(value.get("id", "")),
            dead_lettered_at=str(value.get("dead_lettered_at", "")),
            reason=Reason(
                kind=_reason_kind(reason.get("kind")),
                code=str(reason.get("code", "")),
                message=str(reason.get("message", "")),
                path=str(reason.get("path") or ""),
                details=_texts(reason.get("details")),
            ),
            source=Source(
                queue=str(source.get("queue", "")),
                message_id=str(source.get("message_id", "")),
                dequeue_count=source.get("dequeue_count"),
                inserted_on=source.get("inserted_on"),
            ),
            environment=value.get("environment"),
            table=value.get("table"),
            operation=value.get("operation"),
            ref=value.get("ref"),
            source_id=value.get("source_id"),
            record=_object(value.get("record")),
            raw_message=value.get("raw_message"),
            truncated=_object(value.get("truncated")),
            dataverse=DataverseError(
                dataverse.get("status"), dataverse.get("code"), dataverse.get("message"), dataverse.get("request_id")
            )
            if dataverse is not None
            else None,
            attempts=_count(value.get("attempts")),
            first_failure_at=value.get("first_failure_at"),
            last_failure_at=value.get("last_failure_at"),
            delivery=_object(value.get("delivery")),
            superseded_refs=_texts(value.get("superseded_refs")),
        )

    @property
    def replayable(self) -> bool:
        """Only whole records can be replayed; raw or truncated messages need a fixed producer."""
        return self.record is not None

    def replay_record(self) -> dict[str, JsonValue]:
        """The record to send again: as the producer sent it, with its ref and a replay count (fresh retries)."""
        if self.record is None:
            raise ValueError(f"dead letter {self.id} holds no record to replay")
        delivery = self.delivery or {}
        replays = delivery.get("replays")
        state = Delivery(ref=self.ref, replays=(replays if isinstance(replays, int) else 0) + 1)
        record = dict(self.record)
        if self.environment and "environment" not in record:
            record["environment"] = self.environment
        record["delivery"] = state.to_json()
        return record


def new_entry(
    *,
    reason: Reason,
    source: Source,
    now: datetime,
    record: Mapping[str, JsonValue] | None = None,
    raw_message: str | None = None,
    environment: str | None = None,
    table: str | None = None,
    operation: str | None = None,
    ref: str | None = None,
    source_id: str | None = None,
    dataverse: WriteResult | None = None,
    delivery: Delivery | None = None,
    attempts: int = 0,
    superseded_refs: Sequence[str] = (),
) -> DeadLetter:
    stamp = now.isoformat()
    return DeadLetter(
        id=uuid.uuid4().hex,
        dead_lettered_at=stamp,
        reason=reason,
        source=source,
        environment=environment,
        table=table,
        operation=operation,
        ref=ref,
        source_id=source_id,
        record=record,
        raw_message=raw_message,
        dataverse=DataverseError.of(dataverse) if dataverse is not None else None,
        attempts=attempts,
        first_failure_at=(delivery.first_failure_at if delivery else None) or stamp,
        last_failure_at=stamp,
        delivery=delivery.to_json() if delivery is not None else None,
        superseded_refs=tuple(superseded_refs),
    )


def dead_letter_record(
    sink: DeadLetterSink,
    record: Record,
    *,
    reason: Reason,
    source: Source,
    now: datetime,
    dataverse: WriteResult | None = None,
    attempts: int = 0,
    superseded_refs: Sequence[str] = (),
) -> DeadLetter:
    """Dead-letter a parsed record (replayable: the entry keeps it as the producer sent it); the stored entry."""
    entry = new_entry(
        reason=reason,
        source=source,
        now=now,
        record=record.raw,
        environment=record.environment,
        table=record.table,
        operation=record.operation.value,
        ref=record.ref,
        source_id=record.source_id,
        dataverse=dataverse,
        delivery=record.delivery,
        attempts=attempts,
        superseded_refs=superseded_refs,
    )
    sink.put(entry.serialize())
    return entry


def dead_letter_rejected(
    sink: DeadLetterSink, rejected: RejectedRecord, *, source: Source, now: datetime
) -> DeadLetter:
    """Dead-letter a record that failed validation: kept as sent when it is an object (replayable once fixed),
    else as its JSON text; the members it names (environment, table...) are filled in for filtering."""
    raw = rejected.raw
    as_record = raw if isinstance(raw, dict) else None
    entry = new_entry(
        reason=Reason.of(ReasonKind.INVALID_RECORD, rejected.problem),
        source=source,
        now=now,
        record=as_record,
        raw_message=None if as_record is not None else _json_text(raw),
        environment=_text_member(raw, "environment"),
        table=_text_member(raw, "table"),
        operation=_text_member(raw, "operation"),
        ref=rejected.ref,
        source_id=_text_member(raw, "source_id"),
        delivery=rejected.delivery,
    )
    sink.put(entry.serialize())
    return entry


def dead_letter_message(
    sink: DeadLetterSink, problem: Problem, text: str, *, source: Source, now: datetime
) -> DeadLetter:
    """Dead-letter a message that could not be read into records, as its text; the stored entry."""
    entry = new_entry(
        reason=Reason.of(ReasonKind.INVALID_MESSAGE, problem),
        source=source,
        now=now,
        raw_message=text,
        ref=source.message_id,
    )
    sink.put(entry.serialize())
    return entry


def fit_to_message(entry: DeadLetter, limit: int = MAX_MESSAGE_JSON_BYTES) -> DeadLetter:
    """Shrink an entry until its JSON fits `limit` bytes: first long texts, then the record or raw message."""
    if json_size(entry.to_json()) <= limit:
        return entry
    entry = _shorten_texts(entry)
    if json_size(entry.to_json()) <= limit:
        return entry
    if entry.record is not None:  # keep the record as text so that it can be cut like a raw message
        text = dumps_compact(dict(entry.record))
        entry = replace(entry, record=None, raw_message=text, truncated=_truncation("record", text))
    elif entry.raw_message is not None:
        entry = replace(entry, truncated=_truncation("raw_message", entry.raw_message))
    return _cut_raw_message(entry, limit)


def _shorten_texts(entry: DeadLetter) -> DeadLetter:
    reason = replace(entry.reason, message=entry.reason.message[:_MAX_ERROR_MESSAGE], details=entry.reason.details[:3])
    dataverse = entry.dataverse
    if dataverse is not None and dataverse.message:
        dataverse = replace(dataverse, message=dataverse.message[:_MAX_ERROR_MESSAGE])
    return replace(entry, reason=reason, dataverse=dataverse, superseded_refs=entry.superseded_refs[:50])


def _truncation(field_name: str, text: str) -> dict[str, JsonValue]:
    data = text.encode("utf-8", errors="backslashreplace")
    return {"field": field_name, "original_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _cut_raw_message(entry: DeadLetter, limit: int) -> DeadLetter:
    text = entry.raw_message or ""
    keep = len(text)
    while True:
        candidate = replace(entry, raw_message=text[:keep] + TRUNCATION_MARKER)
        size = json_size(candidate.to_json())
        if size <= limit or keep == 0:
            return candidate
        # JSON escaping and UTF-8 make characters 1 to 6 bytes long: shrink in proportion to the excess.
        keep = max(0, min(keep - 1, int(keep * (limit / size) * 0.99)))


def _text_member(raw: JsonValue, name: str) -> str | None:
    value = raw.get(name) if isinstance(raw, dict) else None
    return value[:200] if isinstance(value, str) else None


def _json_text(raw: JsonValue) -> str:
    try:
        return dumps_compact(raw)
    except ValueError:
        return repr(raw)


def _compact(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return {k: v for k, v in value.items() if v is not None}


# Lenient readers for DeadLetter.from_json: a member of an unexpected type reads as absent, never raises.


def _object(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _texts(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _count(value: object) -> int:
    if not isinstance(value, int | float | str):
        return 0
    try:
        return int(value)
    except (ValueError, OverflowError):  # "many", NaN, Infinity (json.loads accepts both)
        return 0


def _reason_kind(value: object) -> ReasonKind:
    try:
        return ReasonKind(str(value))
    except ValueError:
        return ReasonKind.INVALID_MESSAGE
