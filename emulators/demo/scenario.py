"""The demo's fixed scenario: where each environment's records go, the settings it shortens, the trouble it injects.

- contoso gets the sample data through the records queue (queue trigger, one message = up to 1000 records);
  fabrikam gets the same data through the bulk queue as many small messages (50 records each), which the
  bulk-drain timer coalesces into full bulk requests. Accounts go first; an environment's contacts are sent once
  its accounts have landed, as an initial load of parents and children is done. (Sent together, contacts race
  their accounts through the parallel queue trigger; the dependency retries sort that out, but the demo's
  shortened retry delay would then make the outcome depend on the machine's speed.)
- Raw invalid messages go to the records queue, except the one that is not base64, which goes to the bulk queue:
  the bulk drain dead-letters it as `queue_encoding`, as the records trigger would (the app undoes the queue's
  base64 itself; see the module docstring of emulators/demo/run.py).
- A throttling episode once contoso's first rows have landed: on contoso, scripted 429s with each
  service-protection code on its bulk requests, then a short outage (503s and a connection reset); on fabrikam,
  for a few seconds, the emulator's real limiter with a concurrency limit of 2 (Dataverse's is 52), so those 429s
  (0x80072326) come from the service-protection model itself, not from a script.
- Settings that only make the demo quicker (production values in brackets) are listed in `DEMO_SETTINGS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulators.dataverse.errors import THROTTLE_CONCURRENCY, THROTTLE_EXECUTION_TIME, THROTTLE_REQUESTS
from shared.queues.names import BULK_QUEUE, RECORDS_QUEUE


@dataclass(frozen=True)
class Route:
    environment: str
    queue: str
    records_per_message: int  # the producer packs up to this many records (and at most 48 KiB) per message


ROUTES = (Route("contoso", RECORDS_QUEUE, 1000), Route("fabrikam", BULK_QUEUE, 50))
INVALID_MESSAGES_QUEUE = RECORDS_QUEUE
NOT_BASE64_QUEUE = BULK_QUEUE

# name -> (demo value, production default); the summary prints them.
DEMO_SETTINGS: dict[str, tuple[str, str]] = {
    "DEPENDENCY_RETRY_DELAY_SECONDS": ("2", "60"),  # a contact whose account is not there yet is retried sooner
    "POISON_REQUEUE_DELAY_SECONDS": ("5", "300"),
    "BULK_DRAIN_SCHEDULE": ("*/2 * * * * *", "*/10 * * * * *"),
}
# host.json extensions.queues changes for the runner: poll an empty queue at most every second (host.json: 5 s), so
# records re-sent with a delay (parent not there yet) are picked up promptly. visibilityTimeout stays 30 s: the
# handlers read it from host.json for their own retry delay, and nothing in the demo needs a host retry.
HOST_QUEUE_CHANGES = {"maxPollingInterval": "00:00:01"}

EPISODE_ENVIRONMENT = "contoso"
EPISODE_AFTER_ROWS = 400  # inject once this many rows have landed in the episode's environment
EPISODE_PATH = r"Multiple$"  # the bulk actions (UpsertMultiple), so every scripted fault hits a write
THROTTLE_CODES = (THROTTLE_REQUESTS, THROTTLE_EXECUTION_TIME, THROTTLE_CONCURRENCY)
SCRIPTED_429S_PER_CODE = 2
OUTAGE_503S = 4
OUTAGE_RESETS = 1


def episode_faults() -> list[dict[str, Any]]:
    """Fault rules for the admin API, fired in order: 429s with each limit code, then 503s, then a reset."""
    throttles = [
        {"kind": "429", "count": SCRIPTED_429S_PER_CODE, "limit_code": code, "retry_after": 1, "method": "POST",
         "path": EPISODE_PATH}
        for code in THROTTLE_CODES
    ]  # fmt: skip
    outage = [
        {"kind": "503", "count": OUTAGE_503S, "method": "POST", "path": EPISODE_PATH},
        {"kind": "reset", "count": OUTAGE_RESETS, "method": "POST", "path": EPISODE_PATH},
    ]
    return throttles + outage


# Real service-protection throttling: the emulator's limiter with a lowered concurrency limit, for a while, once
# the environment is busy (its first rows landed).
LIMITED_ENVIRONMENT = "fabrikam"
LIMITED_AFTER_ROWS = 100
LIMITED_CONCURRENCY = 2
LIMITED_SECONDS = 6.0
