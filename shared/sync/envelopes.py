"""Messages the app writes for itself: continuations (records to try again) and poison envelopes.

Both carry each record as the producer sent it plus its `delivery` state (ref, attempt counts, first failure),
packed into as few messages as fit the queue limit. A poison envelope (`dataverse-sync/poison-v1`) is what the
records handler (and the bulk drain) writes on the last allowed attempt instead of letting the host copy a bare
body: it keeps why the records failed, so the triage function can decide between re-queue and dead-letter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from shared.sync.contract import (
    MAX_MESSAGE_JSON_BYTES,
    SCHEMA_V1,
    Delivery,
    Record,
    dumps_compact,
)
from shared.sync.ports import JsonValue

POISON_SCHEMA = "dataverse-sync/poison-v1"


def record_with_delivery(record: Record, delivery: Delivery) -> dict[str, JsonValue]:
    """The record as received, pinned to its resolved environment, with its retry state."""
    item = dict(record.raw)
    if record.environment is not None:
        item["environment"] = record.environment
    item["delivery"] = replace(delivery, ref=record.ref).to_json()
    return item


def pack(
    items: Sequence[Mapping[str, JsonValue]], meta: Mapping[str, JsonValue], limit: int = MAX_MESSAGE_JSON_BYTES
) -> list[str]:
    """`{**meta, "records": [...]}` messages, each within `limit` bytes, records in order.

    A record always fits alone: contract.MAX_RECORD_JSON_BYTES leaves room for the envelope and delivery state.
    """
    head = dumps_compact(dict(meta))[:-1] + ("," if meta else "") + '"records":['
    overhead = len(head.encode("utf-8")) + 2  # "]}"
    messages: list[str] = []
    batch: list[str] = []
    size = overhead
    for item in items:
        text = dumps_compact(dict(item))
        length = len(text.encode("utf-8")) + (1 if batch else 0)
        if batch and size + length > limit:
            messages.append(head + ",".join(batch) + "]}")
            batch, size = [], overhead
            length -= 1
        batch.append(text)
        size += length
    if batch:
        messages.append(head + ",".join(batch) + "]}")
    return messages


def continuation_messages(items: Sequence[Mapping[str, JsonValue]]) -> list[str]:
    return pack(items, {"schema": SCHEMA_V1})


@dataclass(frozen=True)
class PoisonCause:
    """Why records ended on the poison queue, as known on their last attempt."""

    kind: str  # "transient" (retry may help) or "unknown"
    error_class: str  # e.g. "TransientWriteResult", "DeadlineExceeded", or an exception class name
    code: str | None = None  # Dataverse error code, if any
    status: int | None = None
    message: str | None = None
    request_id: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"kind": self.kind, "error_class": self.error_class}
        for name in ("code", "status", "request_id"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.message:
            out["message"] = self.message[:500]
        return out


@dataclass(frozen=True)
class PoisonEnvelope:
    cause: PoisonCause
    original: Mapping[str, JsonValue]  # queue, message_id, dequeue_count, inserted_on
    poisoned_at: str
    records: list[JsonValue]


def poison_messages(
    items: Sequence[Mapping[str, JsonValue]], *, cause: PoisonCause, original: Mapping[str, JsonValue], poisoned_at: str
) -> list[str]:
    meta: dict[str, JsonValue] = {
        "schema": POISON_SCHEMA,
        "cause": cause.to_json(),
        "original": dict(original),
        "poisoned_at": poisoned_at,
    }
    return pack(items, meta)


def read_poison_envelope(text: str) -> PoisonEnvelope | None:
    """The envelope if `text` is one (as written by poison_messages); None for anything else."""
    if POISON_SCHEMA not in text[:200]:
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(value, dict) or value.get("schema") != POISON_SCHEMA:
        return None
    cause = value.get("cause")
    records = value.get("records")
    if not isinstance(cause, dict) or not isinstance(records, list):
        return None
    status = cause.get("status")
    original = value.get("original")
    return PoisonEnvelope(
        cause=PoisonCause(
            kind=str(cause.get("kind", "unknown")),
            error_class=str(cause.get("error_class", "")),
            code=_optional_text(cause.get("code")),
            status=status if isinstance(status, int) and not isinstance(status, bool) else None,
            message=_optional_text(cause.get("message")),
            request_id=_optional_text(cause.get("request_id")),
        ),
        original=original if isinstance(original, dict) else {},
        poisoned_at=str(value.get("poisoned_at", "")),
        records=records,
    )


def _optional_text(value: object) -> str | None:
    return str(value) if value is not None else None
