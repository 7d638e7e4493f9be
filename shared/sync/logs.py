"""Structured log events with correlation ids (message id -> record ref -> Dataverse request id).

Each event is one log line `event key=value ...` for people and local runs, and the same fields in
`extra={"dvsync_event": ..., "dvsync": {...}}` for structured sinks (the Functions worker forwards records to
Application Insights; OpenTelemetry exporters turn `extra` attributes into custom dimensions). Values are
identifiers, counts and reasons: never record data, tokens or secrets.
"""

from __future__ import annotations

import json
import logging
import re

from shared.sync.ports import JsonValue

LOGGER_NAME = "dataverse_sync"
_MAX_VALUE_CHARS = 300
_MAX_LIST_ITEMS = 20
_BARE = re.compile(r"^[A-Za-z0-9_.:/@+-]+$")


def logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def event(log: logging.Logger, level: int, name: str, **fields: JsonValue) -> None:
    if not log.isEnabledFor(level):
        return
    rendered = " ".join(f"{key}={_render(value)}" for key, value in fields.items() if value is not None)
    log.log(level, "%s %s", name, rendered, extra={"dvsync_event": name, "dvsync": fields})


def refs(items: list[str]) -> JsonValue:
    """A bounded list of refs for a log line (the full set is in dead letters or continuation messages)."""
    if len(items) <= _MAX_LIST_ITEMS:
        return list(items)
    return [*items[:_MAX_LIST_ITEMS], f"... {len(items) - _MAX_LIST_ITEMS} more"]


def _render(value: JsonValue) -> str:
    # Plain tokens stay bare; anything else is JSON-escaped, so untrusted text cannot forge log lines.
    bare = isinstance(value, str) and _BARE.match(value)
    text = value if bare and isinstance(value, str) else json.dumps(value, ensure_ascii=True)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "…"
