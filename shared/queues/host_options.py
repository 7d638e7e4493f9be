"""The queue options of host.json (extensions.queues) the handlers must agree with.

The records handler writes its own poison envelope on the attempt where the host would poison the message
(maxDequeueCount), and retries unfinished records after the host's visibilityTimeout; so both are read from the
same host.json the host reads, with the same app-setting overrides the host applies
(`AzureFunctionsJobHost__extensions__queues__maxDequeueCount=3` wins over host.json:
https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values). Defaults as
documented (functions-bindings-storage-queue#host-json).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
# `__` separates levels in app-setting names; .NET configuration keys are case-insensitive.
HOST_JSON_OVERRIDE_PREFIX = "AzureFunctionsJobHost__extensions__queues__"
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$")


@dataclass(frozen=True)
class QueueHostOptions:
    max_dequeue_count: int = 5
    visibility_timeout_seconds: int = 0
    message_encoding: str = "base64"
    batch_size: int = 16


def read_queue_host_options(
    path: Path = DEFAULT_HOST_JSON, environ: Mapping[str, str] | None = None
) -> QueueHostOptions:
    """Options from host.json and the `AzureFunctionsJobHost__extensions__queues__*` app settings (`environ`,
    default the process environment); a missing file or key keeps the documented default."""
    queues = _queue_section(path, os.environ if environ is None else environ)
    defaults = QueueHostOptions()
    return QueueHostOptions(
        max_dequeue_count=int(queues.get("maxdequeuecount", defaults.max_dequeue_count)),
        visibility_timeout_seconds=timespan_seconds(str(queues.get("visibilitytimeout", "00:00:00"))),
        message_encoding=str(queues.get("messageencoding", defaults.message_encoding)).lower(),
        batch_size=int(queues.get("batchsize", defaults.batch_size)),
    )


def _queue_section(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """extensions.queues with lower-cased keys, app-setting overrides applied."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        document = {}
    section = {str(k).lower(): v for k, v in document.get("extensions", {}).get("queues", {}).items()}
    prefix = HOST_JSON_OVERRIDE_PREFIX.lower()
    for name, value in environ.items():
        if name.lower().startswith(prefix):
            section[name[len(prefix) :].lower()] = value
    return section


def timespan_seconds(value: str) -> int:
    """A .NET TimeSpan string ("00:00:30", "1.00:00:00") in whole seconds."""
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise ValueError(f"host.json: {value!r} is not a TimeSpan (hh:mm:ss)")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
