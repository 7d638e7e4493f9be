"""Dataverse error payloads and the outcome each failure means for a record.

Error body: `{"error":{"code":"0x...","message":"..."}}` (webapi/compose-http-requests-handle-errors).
Outcomes follow the project's table (design.md) and the docs:
- 429 with the three service-protection codes (api-limits): transient, retry after `Retry-After`;
- 502/503/504, connection errors, timeouts: transient, back off with jitter;
- SQL deadlock/timeout codes of bulk operations (support: "Troubleshoot Dataverse bulk operation errors"):
  transient; a SQL timeout also means the request was too big (split it);
- 401: the token; refreshed once, then transient for the environment;
- a lookup (`@odata.bind`) whose target row does not exist: dependency (retry later, bounded);
- everything else 4xx/5xx (validation, privilege, duplicate key, not found on update...): permanent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.sync.ports import Outcome

# Service protection limit codes (api-limits): hex as the Web API returns them, and the decimal form that the
# .NET ServiceClient compares against, in case a response carries it.
THROTTLE_CODES = {
    "0x80072322": "requests",  # Number of requests exceeded the limit of 6000 over time window of 300 seconds.
    "0x80072321": "execution time",  # Combined execution time of incoming requests exceeded limit ...
    "0x80072326": "concurrency",  # Number of concurrent requests exceeded the limit of 52.
    "-2147015902": "requests",
    "-2147015903": "execution time",
    "-2147015898": "concurrency",
}
SQL_DEADLOCK_CODES = frozenset({"0x80044150", "-2147204784", "0x80040255", "-2147220907"})
SQL_TIMEOUT_CODES = frozenset({"0x80044151", "-2147204783"})
TRANSIENT_STATUSES = frozenset({502, 503, 504})
# Missing rows: ObjectDoesNotExist and the alternate-key variant seen in the field.
NOT_FOUND_CODES = frozenset({"0x80040217", "-2147220969", "0x80060891", "-2147088237"})
DUPLICATE_CODES = frozenset({"0x80040237", "-2147220937", "0x80060892", "-2147088238"})
REQUEST_TOO_LARGE_CODES = frozenset({"0x8004418a", "-2147204726"})


@dataclass(frozen=True)
class DataverseError:
    """One failure answered by Dataverse (or the network), safe to log and to put in a dead letter."""

    status: int | None  # None: no HTTP response (connection error, timeout)
    code: str | None
    message: str
    request_id: str | None = None

    @property
    def throttle_kind(self) -> str | None:
        """Which service-protection limit tripped, if this is a 429."""
        if self.status != 429:
            return None
        return THROTTLE_CODES.get((self.code or "").lower(), "unknown")

    @property
    def is_transient(self) -> bool:
        if self.status is None or self.status == 429 or self.status in TRANSIENT_STATUSES:
            return True
        return self.code_in(SQL_DEADLOCK_CODES | SQL_TIMEOUT_CODES)

    @property
    def too_large(self) -> bool:
        """The request was too big for one round trip: split it (413, request length, SQL timeout)."""
        return self.status == 413 or self.code_in(REQUEST_TOO_LARGE_CODES | SQL_TIMEOUT_CODES)

    def code_in(self, codes: Iterable[str]) -> bool:
        return (self.code or "").lower() in codes


class DataverseRequestFailed(Exception):
    def __init__(self, error: DataverseError) -> None:
        super().__init__(f"{error.status or 'no response'} {error.code or ''} {error.message}".strip())
        self.error = error


def parse_error(status: int, body: bytes | str | None, request_id: str | None = None) -> DataverseError:
    """Read `{"error":{"code","message"}}`; fall back to a short excerpt of a non-JSON body."""
    payload: Any = None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        payload = json.loads(text) if text.strip() else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error = payload["error"]
        code = str(error.get("code") or "") or None
        message = str(error.get("message") or "")
        return DataverseError(status, code.lower() if code else None, message or f"HTTP {status}", request_id)
    excerpt = re.sub(r"\s+", " ", text).strip()[:300]
    return DataverseError(status, None, excerpt or f"HTTP {status}", request_id)


def connection_error(exc: BaseException) -> DataverseError:
    """A failure without a response. Only the exception type and a short reason: URLs may carry key values."""
    reason = type(exc).__name__
    detail = str(exc.args[0]) if exc.args else ""
    if "Connection aborted" in detail or "reset" in detail.lower():
        reason += ": connection reset"
    elif "timed out" in detail.lower():
        reason += ": timed out"
    return DataverseError(None, None, reason)


def mentions_table(error: DataverseError, table: str) -> bool:
    """Whether an error message names a table, as "account With Id = ... Does Not Exist" does."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(table)}(?![A-Za-z0-9_])", error.message, re.IGNORECASE) is not None


def classify(
    error: DataverseError, *, lookup_tables: Iterable[str] = (), own_table: str = "", upsert: bool = True
) -> Outcome:
    """The outcome of a record whose write failed with `error` (after retries were spent).

    A missing row is a DEPENDENCY when the message names one of the record's lookup target tables ("account With
    Ids = ... Do Not Exist"). For an update (not upsert) that names only its own table, the record itself is
    missing: permanent.
    """
    if error.is_transient or error.status == 401:
        return Outcome.TRANSIENT
    if error.status == 404 or error.code_in(NOT_FOUND_CODES):
        named = {table for table in lookup_tables if mentions_table(error, table)}
        if named and (upsert or named != {own_table}):
            return Outcome.DEPENDENCY
    return Outcome.PERMANENT
