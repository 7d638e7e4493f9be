"""Alternate-key and primary-key formatting for Dataverse Web API URLs, `@odata.id`, `@odata.bind` and `$filter`.

Rules followed (learn.microsoft.com/power-apps/developer/data-platform/...):
- use-alternate-key-reference-record: `accounts(<guid>)`, `accounts(accountnumber='ABC123')`, composite
  `contacts(firstname='Joe',emailaddress1='abc@example.com')`, lookup in a key `_primarycontactid_value=<guid>`,
  numbers unquoted `example_records(example_key1=2,example_key2=2)`.
- webapi/query/filter-rows: string literals double their single quotes (`'O''Bryan'`) and reserved characters
  are percent-encoded in the URL.
- define-alternate-keys-entity: key values containing `/ < > * % & : \\ ? +` make GET/PATCH by key URL fail (the
  server rejects them in the path even percent-encoded), so such rows must be found with `$filter` (where those
  characters are fine once percent-encoded in the query string) and then addressed by primary id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import quote

from shared.sync.ports import KeyValue

KEY_BREAKING_CHARACTERS = frozenset("/<>*%&:\\?+")
"""Characters that make key URLs fail (define-alternate-keys-entity, "Alternate key limitations")."""

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_LOOKUP_VALUE_COLUMN = re.compile(r"^_[a-z0-9_]+_value$")
# Unreserved characters (RFC 3986) stay; the quote delimiting OData string literals stays readable. Everything
# else, including `#`, spaces, `(`, `)`, `,`, `=` and non-ASCII (as UTF-8), is percent-encoded.
_SAFE_IN_SEGMENT = "'"


class InvalidKey(ValueError):
    """A key value that cannot be expressed as an OData literal (e.g. NaN, an empty key)."""


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value))


def odata_literal(column: str, value: KeyValue) -> str:
    """The OData literal of one key value, not yet percent-encoded.

    Strings are single-quoted with quotes doubled, except GUIDs of lookup columns (`_x_value`) which OData
    types as Edm.Guid (unquoted). Booleans are `true`/`false`, numbers are plain decimals (no exponent).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidKey(f"key column {column!r}: {value!r} is not a finite number")
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        if _LOOKUP_VALUE_COLUMN.match(column) and is_guid(value):
            return value.lower()
        return "'" + value.replace("'", "''") + "'"
    raise InvalidKey(f"key column {column!r}: unsupported value type {type(value).__name__}")


def encode_for_url(text: str) -> str:
    """Percent-encode (UTF-8) everything but unreserved characters and the literal quote."""
    return quote(text, safe=_SAFE_IN_SEGMENT)


def key_breaks_urls(key: Mapping[str, KeyValue]) -> bool:
    """True when a string value contains a character that makes a key URL fail (see module docstring)."""
    return any(isinstance(v, str) and not KEY_BREAKING_CHARACTERS.isdisjoint(v) for v in key.values())


def key_predicate(key: Mapping[str, KeyValue], *, primary_id: str | None = None) -> str:
    """The parenthesised key of a record URL, percent-encoded: `(<guid>)` or `(col='v',col2=2)`.

    A key made of the primary id column alone (a GUID) becomes the short `(<guid>)` form.
    """
    if not key:
        raise InvalidKey("the key is empty")
    if primary_id is not None and set(key) == {primary_id}:
        value = key[primary_id]
        if not is_guid(value):
            raise InvalidKey(f"primary id {primary_id!r} must be a GUID")
        return f"({str(value).lower()})"
    parts = [f"{column}={encode_for_url(odata_literal(column, value))}" for column, value in key.items()]
    return "(" + ",".join(parts) + ")"


def record_path(entity_set: str, key: Mapping[str, KeyValue], *, primary_id: str | None = None) -> str:
    """Relative URL of one record, e.g. `accounts(accountnumber='A%231')`: for request URLs, `@odata.id` and
    `@odata.bind` values alike."""
    return entity_set + key_predicate(key, primary_id=primary_id)


def filter_expression(key: Mapping[str, KeyValue]) -> str:
    """`$filter` text matching one key, e.g. `accountnumber eq 'a/b' and region eq 2` (not percent-encoded).

    Quotes are doubled, so an injection attempt such as `x') or (name eq 'y` stays inside its literal.
    """
    if not key:
        raise InvalidKey("the key is empty")
    return " and ".join(f"{column} eq {odata_literal(column, value)}" for column, value in key.items())


def any_of_filter(keys: list[Mapping[str, KeyValue]]) -> str:
    """`$filter` matching any of several keys: `(k eq 'a') or (k eq 'b')`."""
    return " or ".join(f"({filter_expression(key)})" for key in keys)


def normalized_key(key: Mapping[str, object]) -> tuple[tuple[str, object], ...]:
    """A hashable form of a key, for matching rows returned by a query and spotting repeated keys. Strings compare
    case-insensitively, as Dataverse's alternate-key indexes and `$filter` do (case-insensitive collation)."""
    return tuple(
        (column, value.casefold() if isinstance(value, str) else value) for column, value in sorted(key.items())
    )
