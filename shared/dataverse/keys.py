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

Two forms of a record reference:
- in a request URL (`record_path`): literals percent-encoded (UTF-8), as RFC 3986 requires (`#` -> `%23`, space ->
  `%20`); the server decodes the path before parsing the key;
- inside a JSON body (`record_reference`, for `@odata.id` and `@odata.bind`): the literal as is (quotes doubled).
  Whether Dataverse percent-decodes these body references is not documented: Microsoft's Python SDK sends them
  unencoded; an unencoded value is read the same by a server that decodes and by one that does not, as long as
  it holds no `%` and nothing a URI parser treats as structure. So keys with `#` (a fragment in a URI), control
  characters, or any key-breaking character are never put in a reference: they take the id path described above
  (`needs_id_addressing`).
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
# What makes a key unusable in a URL (the documented set) or in a body reference (`#`, control characters).
_UNSAFE_IN_REFERENCE = re.compile("[" + re.escape("".join(sorted(KEY_BREAKING_CHARACTERS)) + "#") + "\x00-\x1f\x7f]")


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


def needs_id_addressing(key: Mapping[str, KeyValue]) -> bool:
    """True when the key cannot be used in a URL or a body reference: resolve the row's id with `$filter`."""
    return any(isinstance(v, str) and _UNSAFE_IN_REFERENCE.search(v) for v in key.values())


def key_predicate(key: Mapping[str, KeyValue], *, primary_id: str | None = None, encode: bool = True) -> str:
    """The parenthesised key of a record: `(<guid>)` or `(col='v',col2=2)`; percent-encoded unless `encode` is
    False (body references). A key made of the primary id column alone becomes the short `(<guid>)` form.
    """
    if not key:
        raise InvalidKey("the key is empty")
    if primary_id is not None and set(key) == {primary_id}:
        value = key[primary_id]
        if not is_guid(value):
            raise InvalidKey(f"primary id {primary_id!r} must be a GUID")
        return f"({str(value).lower()})"
    literals = ((column, odata_literal(column, value)) for column, value in key.items())
    parts = [f"{column}={encode_for_url(literal) if encode else literal}" for column, literal in literals]
    return "(" + ",".join(parts) + ")"


def record_path(entity_set: str, key: Mapping[str, KeyValue], *, primary_id: str | None = None) -> str:
    """Relative URL of one record for a request line, e.g. `accounts(accountnumber='A%20B')`."""
    return entity_set + key_predicate(key, primary_id=primary_id)


def record_reference(entity_set: str, key: Mapping[str, KeyValue], *, primary_id: str | None = None) -> str:
    """A record reference for `@odata.id`/`@odata.bind` in a JSON body, e.g. `accounts(accountnumber='A B')`.
    Only for keys where `needs_id_addressing` is False (see the module docstring)."""
    return entity_set + key_predicate(key, primary_id=primary_id, encode=False)


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
