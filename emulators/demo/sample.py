"""The bundled sample data set (sample_data/), read the way an operator's tools read it.

accounts.csv and contacts.jsonl are read with the operator CLI's own file reader (shared/cli/record_files.py), so
the demo sends exactly what `python -m shared enqueue` would. invalid_messages.jsonl holds raw queue message
bodies that a misbehaving producer might send; what each must become under the demo's configuration is worked
out by running it through the real records handler with in-memory ports (`expect_invalid_message`): with both
environments configured, a record that names none is refused as `environment_required`, where the single
environment of local.settings.sample.json would have taken it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.cli.record_files import FileProblem, RecordDefaults, read_records
from shared.queues.clients import decode_content
from shared.queues.names import RECORDS_QUEUE
from shared.sync.catalog import Catalog
from shared.sync.clock import SystemClock
from shared.sync.engine import SyncEngine
from shared.sync.logs import LOGGER_NAME
from shared.sync.policy import SyncPolicy
from shared.sync.ports import IncomingMessage, Outcome, RecordWrite, WriteResult
from shared.sync.records_handler import RecordsHandler

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"
ACCOUNTS_FILE = "accounts.csv"
CONTACTS_FILE = "contacts.jsonl"
INVALID_FILE = "invalid_messages.jsonl"


@dataclass(frozen=True)
class InvalidMessage:
    name: str
    body: str
    raw: bool  # sent as-is, without the base64 the host expects (a producer with the wrong encoding)


@dataclass(frozen=True)
class SampleData:
    accounts: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    invalid_messages: list[InvalidMessage]

    @property
    def records(self) -> list[dict[str, Any]]:
        """Parents first, as a producer that knows its data sends them."""
        return [*self.accounts, *self.contacts]


def load_sample(directory: Path = SAMPLE_DIR) -> SampleData:
    """Read the three files; a problem in them stops the demo with the file, line and column."""
    accounts = _records(directory / ACCOUNTS_FILE, RecordDefaults(table="account", key_columns=("accountnumber",)))
    contacts = _records(directory / CONTACTS_FILE, RecordDefaults(table="contact"))
    invalid = [
        InvalidMessage(case["name"], case["body"], bool(case.get("raw")))
        for case in (json.loads(line) for line in (directory / INVALID_FILE).read_text("utf-8").splitlines() if line)
    ]
    return SampleData(accounts, contacts, invalid)


def _records(path: Path, defaults: RecordDefaults) -> list[dict[str, Any]]:
    found = read_records(path, defaults, None)
    if found.errors:
        raise FileProblem("; ".join(error.describe(path.name) for error in found.errors[:5]))
    return found.records


# --- what an invalid message must become ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedMessage:
    """The dead-letter codes one raw message must produce, and the records beside them that must be written."""

    name: str
    codes: Counter[str]
    written: list[tuple[str, RecordWrite]] = field(default_factory=list)  # (environment, record)


class _AcceptingWriter:
    def __init__(self) -> None:
        self.written: list[tuple[str, RecordWrite]] = []

    def write(self, environment: str, writes: Sequence[RecordWrite], *, deadline: float) -> list[WriteResult]:
        self.written.extend((environment, write) for write in writes)
        return [WriteResult(write.ref, Outcome.WRITTEN) for write in writes]


class _CodesOfEntries:
    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()

    def put(self, entry_json: str) -> str:
        self.codes[json.loads(entry_json)["reason"]["code"]] += 1
        return str(len(self.codes))


class _NoSends:
    def send(self, queue: str, text: str, *, delay_seconds: int = 0) -> str:
        raise AssertionError(f"an invalid sample message made the handler send to {queue}")


def expect_invalid_message(message: InvalidMessage, catalog: Catalog) -> ExpectedMessage:
    """Run the message through the records handler with in-memory ports that accept every write. Its log events
    are silenced: they describe this dry run, not the demo's messages."""
    writer, entries = _AcceptingWriter(), _CodesOfEntries()
    handler = RecordsHandler(
        SyncEngine(
            writer=writer,
            dead_letters=entries,
            sender=_NoSends(),
            clock=SystemClock(),
            catalog=catalog,
            policy=SyncPolicy(),
        )
    )
    # A raw message (sent without base64) meets the app's own decoding; the others arrive as their body.
    body, encoding_error = decode_content(message.body) if message.raw else (message.body.encode("utf-8"), None)
    sync_log = logging.getLogger(LOGGER_NAME)
    was_disabled, sync_log.disabled = sync_log.disabled, True
    try:
        handler.handle(IncomingMessage("expected", body, 1, RECORDS_QUEUE, encoding_error=encoding_error))
    finally:
        sync_log.disabled = was_disabled
    return ExpectedMessage(message.name, entries.codes, writer.written)
