"""The queue options of host.json (extensions.queues) the handlers must agree with.

The records handler writes its own poison envelope on the attempt where the host would poison the message
(maxDequeueCount), and retries unfinished records after the host's visibilityTimeout; so both are read from the
same host.json the host reads. Defaults as documented (functions-bindings-storage-queue#host-json).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$")


@dataclass(frozen=True)
class QueueHostOptions:
    max_dequeue_count: int = 5
    visibility_timeout_seconds: int = 0
    message_encoding: str = "base64"
    batch_size: int = 16


def read_queue_host_options(path: Path = DEFAULT_HOST_JSON) -> QueueHostOptions:
    """Options from host.json; a missing file or key keeps the documented default."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return QueueHostOptions()
    queues = document.get("extensions", {}).get("queues", {})
    defaults = QueueHostOptions()
    return QueueHostOptions(
        max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
        visibility_timeout_seconds=timespan_seconds(queues.get("visibilityTimeout", "00:00:00")),
        message_encoding=str(queues.get("messageEncoding", defaults.message_encoding)).lower(),
        batch_size=int(queues.get("batchSize", defaults.batch_size)),
    )


def timespan_seconds(value: str) -> int:
    """A .NET TimeSpan string ("00:00:30", "1.00:00:00") in whole seconds."""
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise ValueError(f"host.json: {value!r} is not a TimeSpan (hh:mm:ss)")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
