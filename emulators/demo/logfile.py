"""The demo's log: every log record of the app, the runner and the emulators as one JSON object per line.

The terminal shows only the demo's own progress and summary; everything else goes to the file, where the
correlation chain can be followed with jq, e.g. from a queue message to the Dataverse requests that wrote it:

    jq -c 'select(.message_id == "<id>")' .local-cloud/demo/demo.log              # record.written: ref, request_id
    jq -c 'select(.event == "record.dead_lettered")' .local-cloud/demo/demo.log

The sync core's events carry their fields in `extra={"dvsync_event", "dvsync"}` (shared/sync/logs.py) and the
Dataverse client's as flat `extra` attributes (`event`, `request_id`, ...); both become top-level members here.
A small formatter is enough for that, so no logging library is added.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SYNC_FIELDS = ("dvsync", "dvsync_event")
# Chatty at INFO (one line per HTTP request with redacted headers): kept to warnings.
QUIET_LOGGERS = ("azure", "msal", "urllib3", "uvicorn", "asyncio")


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        fields = getattr(record, "dvsync", None)
        if isinstance(fields, dict):
            line["event"] = getattr(record, "dvsync_event", None)
            line.update((key, value) for key, value in fields.items() if value is not None)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in _SYNC_FIELDS and value is not None:
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class EventTally(logging.Handler):
    """Counts structured events by name and keeps the first of each, for the summary."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()
        self.first: dict[str, dict[str, Any]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "dvsync", None)
        name = getattr(record, "dvsync_event", None) or getattr(record, "event", None)
        if not isinstance(name, str):
            return
        self.counts[name] += 1
        if name not in self.first:
            self.first[name] = dict(fields) if isinstance(fields, dict) else {}


# At DEBUG: the sync core's `record.written` (message id -> ref -> request id) and the client's per-request lines.
DETAILED_LOGGERS = ("dataverse_sync", "shared")


def log_to_file(path: Path, *, detailed: bool = True) -> tuple[logging.FileHandler, EventTally]:
    """Send every log record to `path` (truncated first) and to a tally of events; nothing to the terminal.
    `detailed`: the sync core and the client at DEBUG (one line per record written and per request), else INFO."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    # Append mode: should anything close the handler (logging.config.dictConfig does), the next record reopens it.
    file_handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    file_handler.setFormatter(JsonLinesFormatter())
    tally = EventTally()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(file_handler)
    root.addHandler(tally)
    for name in DETAILED_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if detailed else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return file_handler, tally
