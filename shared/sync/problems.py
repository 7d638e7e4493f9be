"""Why a message or record cannot be synced: stable reason codes and path-addressed problems.

The codes are part of the documented contract (docs/message-contract.md): dead-letter entries carry them, operators
filter on them (`python -m shared deadletter list --filter code=unknown_table`), so never rename one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum


class ReasonKind(StrEnum):
    """The family of a dead-letter reason: what an operator should do about it."""

    INVALID_MESSAGE = "invalid_message"  # the whole message is unusable (not JSON, wrong shape): fix the producer
    INVALID_RECORD = "invalid_record"  # one record breaks the contract or the configuration: fix and replay
    REJECTED = "rejected"  # Dataverse refused the record (validation, privilege, duplicate...): fix and replay
    MISSING_PARENT = "missing_parent"  # a lookup target never appeared within the retries: load it, then replay
    RETRIES_EXHAUSTED = "retries_exhausted"  # transient failures outlasted every retry: replay when healthy
    POISONED = "poisoned"  # the host poisoned the message without a recorded cause: read the logs, replay


class Code(StrEnum):
    # message level (ReasonKind.INVALID_MESSAGE)
    EMPTY_BODY = "empty_body"
    NOT_UTF8 = "not_utf8"
    QUEUE_ENCODING = "queue_encoding"  # not base64, the encoding the contract requires on the queue
    DOUBLE_ENCODED = "double_encoded"  # base64 of the JSON arrived: encoded twice (or encoding mismatch)
    INVALID_JSON = "invalid_json"
    NESTING_TOO_DEEP = "nesting_too_deep"
    NOT_A_MESSAGE = "not_a_message"
    UNSUPPORTED_SCHEMA = "unsupported_schema"
    NO_RECORDS = "no_records"
    # record level (ReasonKind.INVALID_RECORD)
    SCHEMA_VIOLATION = "schema_violation"  # a member is missing, unknown, or of the wrong type or format
    DUPLICATE_MEMBER = "duplicate_member"  # the same JSON member twice in one object (ambiguous)
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    INVALID_TEXT = "invalid_text"  # NUL, control characters, unpaired surrogates
    RECORD_TOO_LARGE = "record_too_large"
    KEY_REQUIRED = "key_required"
    KEY_TOO_LARGE = "key_too_large"
    KEY_CONFLICT = "key_conflict"  # data sets a key column to another value than the key
    NOT_AN_ALTERNATE_KEY = "not_an_alternate_key"
    INVALID_PRIMARY_ID = "invalid_primary_id"
    ENVIRONMENT_REQUIRED = "environment_required"
    UNKNOWN_ENVIRONMENT = "unknown_environment"
    UNKNOWN_TABLE = "unknown_table"
    DELETE_WITH_DATA = "delete_with_data"
    # after writing
    DATAVERSE_REJECTED = "dataverse_rejected"  # ReasonKind.REJECTED; the Dataverse code is in `dataverse`
    PARENT_NOT_FOUND = "parent_not_found"  # ReasonKind.MISSING_PARENT
    TRANSIENT_EXHAUSTED = "transient_exhausted"  # ReasonKind.RETRIES_EXHAUSTED
    HOST_POISONED = "host_poisoned"  # ReasonKind.POISONED


@dataclass(frozen=True)
class Problem:
    """One reason, addressed by a path into the message (`records[3].key.accountnumber`), or "" for all of it."""

    code: Code
    message: str
    path: str = ""
    details: tuple[str, ...] = field(default=())  # further problems of the same record, "path: message"


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_NAME_IN_PATH = 40


def join_path(*parts: str | int) -> str:
    """`("records", 3, "key", "accountnumber")` -> `records[3].key.accountnumber`; odd names are quoted."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part) and len(part) <= _MAX_NAME_IN_PATH:
            out += f".{part}" if out else part
        else:
            out += f"[{quote(part)}]"
    return out


def quote(value: object, limit: int = _MAX_NAME_IN_PATH) -> str:
    """Show untrusted input safely in a message: JSON-escaped (no raw control characters), shortened."""
    text = value if isinstance(value, str) else repr(value)
    shortened = text if len(text) <= limit else text[:limit] + "…"
    return json.dumps(shortened, ensure_ascii=True)
