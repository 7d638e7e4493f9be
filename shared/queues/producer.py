"""The producer helper: validate records, pack them into as few queue messages as fit, send, say what was sent.

Everything is validated before anything is sent (a bad record names its index, path and reason, and nothing
goes out), so a producer never half-sends a batch because of one bad record. If a send fails midway,
`PartialSendError` says exactly which records went out (they are processed normally) and which did not.
Messages are UTF-8 JSON `{"schema": "dataverse-sync/v1", "records": [...]}` of at most 49,152 bytes, which
base64 (the contract's queue encoding) turns into at most 65,536 characters, the queue's message limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.queues.names import RECORDS_QUEUE
from shared.sync.catalog import Catalog
from shared.sync.contract import (
    MAX_MESSAGE_JSON_BYTES,
    SCHEMA_V1,
    Record,
    dumps_compact,
    loads_guarded,
    parse_record,
)
from shared.sync.ports import QueueSender
from shared.sync.problems import Problem

MAX_RECORDS_PER_MESSAGE = 1000  # a bulk request holds up to 1,000 records; more per message buys nothing
_HEAD = f'{{"schema":"{SCHEMA_V1}","records":['
_OVERHEAD = len(_HEAD) + 2  # "]}"


@dataclass(frozen=True)
class RecordError:
    index: int  # position in the caller's sequence
    code: str
    path: str  # relative to the record, e.g. "key.accountnumber" ("" for the record as a whole)
    message: str

    def describe(self) -> str:
        where = f"record {self.index}" + (f" {self.path}" if self.path else "")
        return f"{where}: {self.message} [{self.code}]"


class InvalidRecords(ValueError):
    """Some records are invalid; nothing was sent."""

    def __init__(self, errors: list[RecordError]) -> None:
        shown = "; ".join(e.describe() for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} invalid records, nothing sent: {shown}{more}")
        self.errors = errors


@dataclass(frozen=True)
class SentMessage:
    message_id: str
    first: int  # index of its first record in the caller's sequence
    count: int
    bytes: int  # JSON bytes before base64


@dataclass
class SendReport:
    queue: str
    messages: list[SentMessage] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(m.count for m in self.messages)


class PartialSendError(RuntimeError):
    """A send failed: `report` lists the messages (and record ranges) that did go out, in order."""

    def __init__(self, report: SendReport, total: int, cause: BaseException) -> None:
        sent = report.records
        super().__init__(
            f"sent {sent} of {total} records in {len(report.messages)} messages to {report.queue}; records "
            f"{sent} to {total - 1} were NOT sent ({type(cause).__name__}: {cause})"
        )
        self.report = report
        self.total = total


@dataclass(frozen=True)
class PreparedRecords:
    """Validated records as the JSON text that will be sent, in the caller's order."""

    texts: list[str]
    records: list[Record]


def prepare(
    records: Iterable[Mapping[str, Any]], catalog: Catalog, *, environment: str | None = None
) -> PreparedRecords:
    """Validate every record (contract + configuration); raise InvalidRecords listing all problems."""
    texts: list[str] = []
    parsed: list[Record] = []
    errors: list[RecordError] = []
    for index, given in enumerate(records):
        record = dict(given)
        if environment is not None and record.get("environment") is None:
            record["environment"] = environment
        result = _validate(record, index, catalog)
        if isinstance(result, RecordError):
            errors.append(result)
        else:
            texts.append(result[0])
            parsed.append(result[1])
    if errors:
        raise InvalidRecords(errors)
    return PreparedRecords(texts, parsed)


def _validate(record: dict[str, Any], index: int, catalog: Catalog) -> tuple[str, Record] | RecordError:
    if "delivery" in record:
        return RecordError(index, "schema_violation", "delivery", "is set by dataverse-sync, producers omit it")
    try:
        text = dumps_compact(record)
    except (TypeError, ValueError) as exc:  # datetime, Decimal, NaN...: not JSON
        return RecordError(index, "not_json", "", f"not JSON-serialisable: {exc}")
    value, _ = loads_guarded(text)
    parsed = parse_record(value, index=index, message_id="producer")
    if not isinstance(parsed, Record):
        return _error(index, parsed.problem)
    resolved = catalog.resolve(parsed)
    if isinstance(resolved, Problem):
        return _error(index, resolved)
    return text, resolved


def _error(index: int, problem: Problem) -> RecordError:
    return RecordError(index, problem.code.value, problem.path, problem.message)


def pack_texts(
    texts: list[str], *, limit: int = MAX_MESSAGE_JSON_BYTES, max_records: int = MAX_RECORDS_PER_MESSAGE
) -> list[tuple[int, int, str]]:
    """(first index, count, message text) for consecutive runs of records that fit one message."""
    messages: list[tuple[int, int, str]] = []
    first, size = 0, _OVERHEAD
    for index, text in enumerate(texts):
        length = len(text.encode("utf-8")) + (1 if index > first else 0)
        if index > first and (size + length > limit or index - first >= max_records):
            messages.append((first, index - first, _HEAD + ",".join(texts[first:index]) + "]}"))
            first, size, length = index, _OVERHEAD, length - 1
        size += length
    if first < len(texts):
        messages.append((first, len(texts) - first, _HEAD + ",".join(texts[first:]) + "]}"))
    return messages


class RecordProducer:
    """Sends records to the records queue (or the bulk queue) through the QueueSender port."""

    def __init__(self, sender: QueueSender, catalog: Catalog, *, queue: str = RECORDS_QUEUE) -> None:
        self.sender = sender
        self.catalog = catalog
        self.queue = queue

    def send_records(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        environment: str | None = None,
        queue: str | None = None,
        progress: Callable[[int], object] | None = None,
        max_records_per_message: int = MAX_RECORDS_PER_MESSAGE,
    ) -> SendReport:
        """Validate all, then send in order. Raises InvalidRecords (nothing sent) or PartialSendError."""
        prepared = prepare(records, self.catalog, environment=environment)
        return self.send_prepared(prepared, queue=queue, progress=progress, max_records=max_records_per_message)

    def send_prepared(
        self,
        prepared: PreparedRecords,
        *,
        queue: str | None = None,
        progress: Callable[[int], object] | None = None,
        max_records: int = MAX_RECORDS_PER_MESSAGE,
    ) -> SendReport:
        target = queue or self.queue
        report = SendReport(target)
        for first, count, text in pack_texts(prepared.texts, max_records=max_records):
            try:
                message_id = self.sender.send(target, text)
            except Exception as exc:
                raise PartialSendError(report, len(prepared.texts), exc) from exc
            report.messages.append(SentMessage(message_id, first, count, len(text.encode("utf-8"))))
            if progress is not None:
                progress(count)
        return report


def send_records(
    sender: QueueSender,
    catalog: Catalog,
    records: Iterable[Mapping[str, Any]],
    *,
    environment: str | None = None,
    queue: str = RECORDS_QUEUE,
) -> SendReport:
    """One-call form of RecordProducer(...).send_records(...)."""
    return RecordProducer(sender, catalog, queue=queue).send_records(records, environment=environment)
