"""The dead-letter queue as an operator's store: put (never expires), list, show, replay, purge.

Entries are queue messages in DEAD_LETTER_QUEUE (format: shared/sync/deadletter.py). They are sent with
`time_to_live=-1`: "-1 means the message does not expire" (Put Message, messagettl); without it they would
vanish after 7 days. https://learn.microsoft.com/rest/api/storageservices/put-message

Queues can only be peeked 32 messages deep, so listing, replaying and purging a selection *scan* the queue:
receive everything (each message hidden for `hold_seconds`, so no message is seen twice), work on it, then make
what is left visible again. Only the operator's tools read this queue, so hiding entries for the length of a
scan disturbs no one; two scans at the same time would each see part of the queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient, QueueMessage

from shared.queues.clients import decode_content
from shared.queues.names import DEAD_LETTER_QUEUE, RECORDS_QUEUE
from shared.queues.producer import pack_texts
from shared.sync.contract import dumps_compact
from shared.sync.deadletter import DEAD_LETTER_SCHEMA, DeadLetter
from shared.sync.ports import QueueSender

log = logging.getLogger("dataverse_sync.deadletters")

NEVER_EXPIRE = -1
PEEK_LIMIT = 32  # Peek Messages: numofmessages at most 32


@dataclass(frozen=True)
class StoredEntry:
    """A message of the dead-letter queue, and the entry it holds (None if it is not a readable entry)."""

    message_id: str
    receipt: str | None
    inserted_on: datetime | None
    text: str
    entry: DeadLetter | None

    @property
    def entry_id(self) -> str:
        return self.entry.id if self.entry is not None else self.message_id


@dataclass(frozen=True)
class EntryFilter:
    """All given conditions must hold. `id` matches the entry id or the queue message id; `message` the source
    message id; `since` compares ISO timestamps with `dead_lettered_at`."""

    id: str | None = None
    kind: str | None = None
    code: str | None = None
    environment: str | None = None
    table: str | None = None
    operation: str | None = None
    queue: str | None = None
    message: str | None = None
    ref: str | None = None
    since: str | None = None

    @classmethod
    def parse(cls, conditions: Sequence[str]) -> EntryFilter:
        """From `key=value` strings (the CLI's --filter); raises ValueError naming what is wrong."""
        values: dict[str, str] = {}
        for condition in conditions:
            key, sep, value = condition.partition("=")
            key = key.strip()
            if not sep or not value.strip():
                raise ValueError(f"filter {condition!r}: expected key=value")
            if key not in FILTER_KEYS:
                raise ValueError(f"filter {condition!r}: unknown key {key!r} (use one of {', '.join(FILTER_KEYS)})")
            values[key] = value.strip()
        return cls(**values)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def matches(self, stored: StoredEntry) -> bool:
        entry = stored.entry
        if self.id is not None and self.id not in (stored.message_id, stored.entry_id):
            return False
        if entry is None:  # unreadable messages match only by id, or an empty filter
            return all(getattr(self, f.name) is None for f in fields(self) if f.name != "id")
        actual = {
            "kind": entry.reason.kind.value,
            "code": entry.reason.code,
            "environment": entry.environment,
            "table": entry.table,
            "operation": entry.operation,
            "queue": entry.source.queue,
            "message": entry.source.message_id,
            "ref": entry.ref,
        }
        for key, value in actual.items():
            wanted = getattr(self, key)
            if wanted is not None and wanted != value:
                return False
        return self.since is None or entry.dead_lettered_at >= self.since


FILTER_KEYS = tuple(f.name for f in fields(EntryFilter))
"""The keys of `--filter key=value`: EntryFilter's conditions."""


class Selection(Protocol):
    """Which entries an operation applies to (EntryFilter, AnyOf)."""

    @property
    def empty(self) -> bool: ...

    def matches(self, stored: StoredEntry) -> bool: ...


@dataclass(frozen=True)
class AnyOf:
    """Entries whose entry id or queue message id is one of `ids`."""

    ids: frozenset[str]

    @property
    def empty(self) -> bool:
        return False

    def matches(self, stored: StoredEntry) -> bool:
        return stored.message_id in self.ids or stored.entry_id in self.ids


class Scan:
    """The entries of one scan; entries deleted through it are not shown again when the scan ends."""

    def __init__(self, client: QueueClient, entries: list[StoredEntry]) -> None:
        self._client = client
        self.entries = entries
        self.deleted: set[str] = set()

    def delete(self, stored: StoredEntry) -> None:
        self._client.delete_message(stored.message_id, stored.receipt)
        self.deleted.add(stored.message_id)


@dataclass
class ReplayReport:
    replayed: list[str] = field(default_factory=list)  # entry ids sent back to the records queue and deleted
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry id, why it cannot be replayed)
    messages_sent: int = 0
    not_deleted: list[str] = field(default_factory=list)  # replayed, but the entry could not be deleted
    error: str | None = None  # why the replay stopped early; the entries not listed in `replayed` are untouched


class DeadLetterStore:
    """DeadLetterSink for the handlers, plus the operator's view of the dead-letter queue."""

    def __init__(self, clients: Callable[[str], QueueClient], queue: str = DEAD_LETTER_QUEUE) -> None:
        self._client = clients(queue)
        self.queue = queue

    # --- DeadLetterSink -----------------------------------------------------------------------------------

    def put(self, entry_json: str) -> str:
        sent = self._client.send_message(entry_json, time_to_live=NEVER_EXPIRE)
        return str(sent.id)

    # --- reading ------------------------------------------------------------------------------------------

    def approximate_count(self) -> int:
        return int(self._client.get_queue_properties().approximate_message_count or 0)

    def peek(self, limit: int = PEEK_LIMIT) -> list[StoredEntry]:
        """Up to 32 of the oldest entries, without side effects."""
        messages = self._client.peek_messages(max_messages=max(1, min(PEEK_LIMIT, limit)))
        return [_stored(message) for message in messages]

    @contextmanager
    def scan(self, *, hold_seconds: int = 300) -> Iterator[Scan]:
        """Every entry, hidden from other readers until the block ends; what is not deleted is shown again."""
        held: dict[str, StoredEntry] = {}
        scan = Scan(self._client, [])
        try:
            while True:
                batch = list(
                    self._client.receive_messages(
                        messages_per_page=PEEK_LIMIT, max_messages=PEEK_LIMIT, visibility_timeout=hold_seconds
                    )
                )
                for message in batch:
                    held[str(message.id)] = _stored(message)
                if len(batch) < PEEK_LIMIT:
                    break
            scan.entries = list(held.values())
            yield scan
        finally:
            for message_id, stored in held.items():
                if message_id not in scan.deleted:
                    self._show_again(stored)

    def select(self, entry_filter: Selection, *, limit: int | None = None) -> list[StoredEntry]:
        if entry_filter.empty and limit is not None and limit <= PEEK_LIMIT:
            return self.peek(limit)
        with self.scan() as scan:
            chosen = [e for e in scan.entries if entry_filter.matches(e)]
        return chosen[:limit] if limit is not None else chosen

    def find(self, entry_or_message_id: str) -> StoredEntry | None:
        found = self.select(EntryFilter(id=entry_or_message_id))
        return found[0] if found else None

    # --- changing -------------------------------------------------------------------------------------------

    def replay(
        self,
        entry_filter: Selection,
        sender: QueueSender,
        *,
        queue: str = RECORDS_QUEUE,
        progress: Callable[[int], None] | None = None,
    ) -> ReplayReport:
        """Send the records of matching entries back to `queue` (packed into few messages as the producer packs
        them), deleting each entry once the message carrying it was sent. Stops at the first failed send and says
        how far it got."""
        report = ReplayReport()
        with self.scan() as scan:
            replayable: list[StoredEntry] = []
            for stored in (e for e in scan.entries if entry_filter.matches(e)):
                why_not = _not_replayable(stored)
                if why_not is None:
                    replayable.append(stored)
                else:
                    report.skipped.append((stored.entry_id, why_not))
            for first, count, text in pack_texts([_record_text(stored) for stored in replayable]):
                batch = replayable[first : first + count]
                if not self._replay_batch(
                    scan, batch, text, sender=sender, queue=queue, report=report, progress=progress
                ):
                    break
        return report

    def purge(self, entry_filter: Selection) -> int:
        """Delete matching entries (all of them when the filter is empty). Returns how many were deleted."""
        if entry_filter.empty:
            count = self.approximate_count()
            self._client.clear_messages()
            return count
        deleted = 0
        with self.scan() as scan:
            for stored in scan.entries:
                if entry_filter.matches(stored):
                    scan.delete(stored)
                    deleted += 1
        return deleted

    def _replay_batch(
        self,
        scan: Scan,
        batch: list[StoredEntry],
        text: str,
        *,
        sender: QueueSender,
        queue: str,
        report: ReplayReport,
        progress: Callable[[int], None] | None,
    ) -> bool:
        """Send one message (`text`, the records of `batch`); False when the send failed."""
        try:
            sender.send(queue, text)
        except AzureError as exc:
            report.error = f"sending to {queue} failed: {type(exc).__name__}: {exc}"
            return False
        report.messages_sent += 1
        for stored in batch:
            report.replayed.append(stored.entry_id)
            try:
                scan.delete(stored)
            except AzureError:
                report.not_deleted.append(stored.entry_id)
        if progress is not None:
            progress(len(batch))
        return True

    def _show_again(self, stored: StoredEntry) -> None:
        try:
            self._client.update_message(stored.message_id, stored.receipt, visibility_timeout=0)
        except AzureError:  # it reappears by itself when its hold ends
            log.warning("dead letter %s stays hidden until its hold ends", stored.message_id)


def _stored(message: QueueMessage) -> StoredEntry:
    body, error = decode_content(message.content)
    text = body.decode("utf-8", "backslashreplace")
    entry = None if error else _entry(text)
    return StoredEntry(str(message.id), message.pop_receipt, message.inserted_on, text, entry)


def _entry(text: str) -> DeadLetter | None:
    try:
        value: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or value.get("schema") != DEAD_LETTER_SCHEMA:
        return None
    return DeadLetter.from_json(value)


def _not_replayable(stored: StoredEntry) -> str | None:
    if stored.entry is None:
        return "not a dead-letter entry"
    if stored.entry.record is None:
        if stored.entry.truncated:
            return "truncated to fit the dead-letter queue: fix the producer and send it again"
        return "holds a raw message, not a record: fix the producer and send it again"
    return None


def _record_text(stored: StoredEntry) -> str:
    if stored.entry is None:  # callers check replayability first
        raise ValueError(f"{stored.message_id} holds no record")
    return dumps_compact(stored.entry.replay_record())
