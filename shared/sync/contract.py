"""The message contract, version `dataverse-sync/v1` (docs/message-contract.md), and its strict parser.

A message body is UTF-8 JSON: either one record object, or `{"schema": "dataverse-sync/v1", "records": [...]}`.
Parsing never raises for bad input: a message-level problem (not JSON, wrong shape) rejects the whole message,
a record-level problem rejects that record only, and the records beside it go on. Checks that need the
configured environments (unknown table, alternate keys) live in catalog.py.

Malicious input is bounded here: numbers outside what Dataverse can store, NaN/Infinity, duplicate members,
NUL/control characters, unpaired surrogates (they would crash UTF-8 encoding later) and nesting deeper than the
contract allows all end as a specific problem, never as an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import ErrorDetails

from shared.sync.ports import IncomingMessage, JsonValue, KeyValue, Lookup, Operation
from shared.sync.problems import Code, Problem, join_path, quote

SCHEMA_V1 = "dataverse-sync/v1"
SUPPORTED_SCHEMAS = (SCHEMA_V1,)

# Azure Storage queue messages are at most 64 KiB; with base64 (host.json messageEncoding) 49,152 bytes of JSON
# become exactly 65,536 characters. https://learn.microsoft.com/azure/storage/queues/storage-queues-introduction
MAX_MESSAGE_JSON_BYTES = 49_152
# A record must leave room for the envelope and the retry state added to continuation and poison messages.
MAX_RECORD_JSON_BYTES = 46_080
# Alternate keys: "total key size doesn't violate SQL-based index constraints like 900 bytes per key and 16
# columns per key" (define-alternate-keys-entity). Strings are counted as UTF-16 (nvarchar), an approximation.
MAX_KEY_BYTES = 900
MAX_KEY_COLUMNS = 16
# Key values with / < > * % & : \ ? + cannot be addressed by key URL (define-alternate-keys-entity); they are
# valid here: the Dataverse writer finds such rows with $filter first (shared/dataverse/keys.py).

# Dataverse BigInt is 64-bit; Decimal/Money are far smaller. Wider integers cannot be stored anywhere.
MAX_INTEGER = 2**63 - 1
MAX_SEQUENCE_TEXT = 64

_LOGICAL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")
# Single-valued navigation properties of custom lookups keep the schema name's case (e.g. new_ParentAccount).
_NAVIGATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # as DATAVERSE_ENVIRONMENTS names
GUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# C0 controls and DEL; tab, LF and CR are allowed in data (multi-line text) but not in keys or names.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_KEY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


# --- JSON with guards -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OutOfRange:
    """Stands in for a number that cannot be stored, so that only its record fails (with a path)."""

    text: str


class _DuplicateMembers(dict[str, Any]):
    """A JSON object that named a member twice; json.loads would silently keep the last one."""

    duplicates: tuple[str, ...] = ()


class _Guard:
    """json.loads hooks that mark values the contract rejects, and remember whether they marked any."""

    def __init__(self) -> None:
        self.marked = False

    def object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) == len(pairs):
            return result
        seen: set[str] = set()
        duplicates: list[str] = []
        for name, _ in pairs:
            if name in seen:
                duplicates.append(name)
            seen.add(name)
        marked = _DuplicateMembers(result)
        marked.duplicates = tuple(duplicates)
        self.marked = True
        return marked

    def integer(self, text: str) -> int | _OutOfRange:
        # Checked before int(): CPython refuses over 4,300 digits with ValueError, and huge ints are slow anyway.
        if len(text.lstrip("-")) <= 18:
            return int(text)
        value = int(text) if len(text.lstrip("-")) <= 19 else None
        if value is not None and -MAX_INTEGER - 1 <= value <= MAX_INTEGER:
            return value
        self.marked = True
        return _OutOfRange(text)

    def float(self, text: str) -> float | _OutOfRange:
        value = float(text)  # "1e999" becomes inf: JSON has no infinity, Dataverse cannot store it
        if math.isfinite(value):
            return value
        self.marked = True
        return _OutOfRange(text)

    def constant(self, name: str) -> _OutOfRange:
        self.marked = True
        return _OutOfRange(name)  # NaN, Infinity, -Infinity: accepted by json.loads, not JSON (RFC 8259 §6)


def loads_guarded(text: str) -> tuple[Any, bool]:
    """json.loads that keeps going past values the contract rejects, marking them for the record's check.

    Returns the value and whether anything was marked. Raises json.JSONDecodeError for text that is not JSON
    and RecursionError for absurd nesting.
    """
    guard = _Guard()
    value = json.loads(
        text,
        object_pairs_hook=guard.object,
        parse_int=guard.integer,
        parse_float=guard.float,
        parse_constant=guard.constant,
    )
    return value, guard.marked


# Control characters and unpaired surrogates can only enter a JSON string through escapes (RFC 8259 §7); when
# a message has none of these escapes, its strings need no per-character scan.
_RISKY_ESCAPE = re.compile(r"\\u(?:00[01][0-9a-fA-F]|007[fF]|[dD][89a-fA-F])|\\[bf]")


def dumps_compact(value: object) -> str:
    """The serialisation used for size checks and for every message the app sends (compact, UTF-8 as is).

    A rejected record may hold an unpaired surrogate (from a `\\ud800` escape); such text cannot be encoded as
    UTF-8, so it is written with ASCII escapes instead, which is still the same JSON.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if _SURROGATE.search(text):
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text


def json_size(value: object) -> int:
    return len(dumps_compact(value).encode("utf-8"))


# --- Record model (pydantic, strict) ----------------------------------------------------------------------------


class ContractError(ValueError):
    """Raised by a field validator when a more specific code than schema_violation applies."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


def _logical_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_json_type(value)}")
    if not _LOGICAL_NAME.match(value):
        raise ValueError(f"{quote(value)} is not a logical name (lowercase letters, digits, underscore)")
    return value


def _navigation_name(value: object) -> str:
    if not isinstance(value, str) or not _NAVIGATION_NAME.match(value):
        raise ValueError(f"{quote(value)} is not a navigation property name (letters, digits, underscore)")
    return value


def _environment_name(value: object) -> str:
    if not isinstance(value, str) or not _ENVIRONMENT_NAME.match(value):
        raise ValueError(f"{quote(value)} is not an environment name (letters, digits, '_', '.', '-')")
    return value


def _key_value(value: object) -> KeyValue:
    if isinstance(value, str):
        if not value:
            raise ValueError("must not be empty")
        if _KEY_CONTROL.search(value):
            raise ContractError(Code.INVALID_TEXT, "a key value must not contain control characters")
        return value
    if isinstance(value, bool | int | float):
        return value
    raise ValueError(f"must be a string, number or boolean, not {_json_type(value)}")


def _data_value(value: object) -> JsonValue:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ValueError(
        f"must be a string, number, boolean or null, not {_json_type(value)} (set lookups in `lookups`, not in `data`)"
    )


def _guid(value: object) -> str:
    if not isinstance(value, str) or not GUID_PATTERN.match(value):
        raise ValueError("is not a GUID")  # the value itself is not echoed: messages reach the logs
    return value.lower()


def _sequence(value: object) -> int:
    """An integer, or an RFC 3339 timestamp with offset (turned into microseconds since the epoch)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if isinstance(value, str) and len(value) <= MAX_SEQUENCE_TEXT:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return int(moment.timestamp() * 1_000_000)
    raise ValueError("must be a non-negative integer or an RFC 3339 timestamp with offset, e.g. 2024-05-01T12:00:00Z")


def _text(limit: int) -> Any:
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_json_type(value)}")
        if not value or len(value) > limit or _KEY_CONTROL.search(value):
            raise ValueError(f"must be 1 to {limit} characters without control characters")
        return value

    return PlainValidator(check)


LogicalName = Annotated[str, PlainValidator(_logical_name)]
NavigationName = Annotated[str, PlainValidator(_navigation_name)]
EnvironmentName = Annotated[str, PlainValidator(_environment_name)]
# Any as the schema type: pydantic cannot build a schema for the recursive JsonValue alias; the validators type it.
KeyValueField = Annotated[Any, PlainValidator(_key_value)]
DataValueField = Annotated[Any, PlainValidator(_data_value)]
GuidField = Annotated[str, PlainValidator(_guid)]
SequenceField = Annotated[int, PlainValidator(_sequence)]
KeyMap = Annotated[dict[LogicalName, KeyValueField], Field(max_length=MAX_KEY_COLUMNS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LookupSpec(_Strict):
    table: LogicalName
    key: Annotated[KeyMap, Field(min_length=1)]


class DeliverySpec(_Strict):
    """Retry state the app itself adds to continuation, retry and poison messages. Producers omit it."""

    ref: Annotated[str, _text(200)] | None = None
    transient_attempts: Annotated[int, Field(ge=0, le=10_000)] = 0
    dependency_attempts: Annotated[int, Field(ge=0, le=10_000)] = 0
    poison_requeues: Annotated[int, Field(ge=0, le=10_000)] = 0
    replays: Annotated[int, Field(ge=0, le=10_000)] = 0
    first_failure_at: Annotated[str, _text(40)] | None = None
    last_failure: Annotated[str, _text(600)] | None = None


class RecordSpec(_Strict):
    environment: EnvironmentName | None = None
    table: LogicalName
    operation: Literal["upsert", "create", "update", "delete"] = "upsert"
    key: KeyMap = Field(default_factory=dict)
    data: dict[LogicalName, DataValueField] = Field(default_factory=dict)
    lookups: dict[NavigationName, LookupSpec] = Field(default_factory=dict)
    source_id: Annotated[str, _text(256)] | None = None
    sequence: SequenceField | None = None
    caller_object_id: GuidField | None = None
    delivery: DeliverySpec | None = None


# --- Parsed records ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """Retry state of one record across continuation messages (see DeliverySpec)."""

    ref: str | None = None
    transient_attempts: int = 0
    dependency_attempts: int = 0
    poison_requeues: int = 0
    replays: int = 0
    first_failure_at: str | None = None
    last_failure: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"ref": self.ref} if self.ref else {}
        for name in ("transient_attempts", "dependency_attempts", "poison_requeues", "replays"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.first_failure_at:
            out["first_failure_at"] = self.first_failure_at
        if self.last_failure:
            out["last_failure"] = self.last_failure[:600]
        return out


@dataclass(frozen=True)
class Record:
    """One valid record of a message. `raw` is the record object as received (without `delivery`), which is
    what dead letters keep and continuation messages re-send."""

    ref: str  # correlation handle: "<first message id>:<index>", kept across retries
    index: int  # position in the message that carried it
    raw: Mapping[str, JsonValue]
    environment: str | None
    table: str
    operation: Operation
    key: Mapping[str, KeyValue]
    data: Mapping[str, JsonValue]
    lookups: Mapping[str, Lookup]
    source_id: str | None
    sequence: int | None
    caller_object_id: str | None
    delivery: Delivery


@dataclass(frozen=True)
class RejectedRecord:
    index: int
    raw: JsonValue  # whatever the producer sent at that position (may not even be an object)
    problem: Problem
    ref: str
    delivery: Delivery = field(default_factory=Delivery)


@dataclass(frozen=True)
class ParsedMessage:
    records: list[Record]
    rejected: list[RejectedRecord]
    single: bool  # a bare record object rather than the envelope


@dataclass(frozen=True)
class RejectedMessage:
    problem: Problem
    text: str  # the body as text (invalid UTF-8 shown with backslash escapes), for the dead letter


# --- Parsing ----------------------------------------------------------------------------------------------------


def decode_body(body: bytes) -> str | Problem:
    if not body.strip():
        return Problem(Code.EMPTY_BODY, "the message body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(
            Code.NOT_UTF8,
            f"the message body is not UTF-8 (byte {exc.start}: {body[exc.start : exc.start + 1]!r}); "
            "producers must send UTF-8 JSON",
        )
    return text[1:] if text.startswith("\ufeff") else text  # RFC 8259 §8.1: parsers MAY ignore a BOM


def body_as_text(body: bytes) -> str:
    return body.decode("utf-8", errors="backslashreplace")


def read_message(message: IncomingMessage) -> ParsedMessage | RejectedMessage:
    """parse_message of a delivered message; rejected whole when its adapter could not undo the queue encoding."""
    if message.encoding_error is not None:
        return RejectedMessage(Problem(Code.QUEUE_ENCODING, message.encoding_error), body_as_text(message.body))
    return parse_message(message.body, message.id)


def parse_message(body: bytes, message_id: str) -> ParsedMessage | RejectedMessage:
    """Parse a queue message body into valid and rejected records, or reject it as a whole."""
    text = decode_body(body)
    if isinstance(text, Problem):
        return RejectedMessage(text, body_as_text(body))
    loaded = _load(text)
    if isinstance(loaded, Problem):
        return RejectedMessage(loaded, text)
    document, marked = loaded
    shape = _records_of(document)
    if isinstance(shape, Problem):
        return RejectedMessage(shape, text)
    items, single = shape
    suspicious = marked or _RISKY_ESCAPE.search(text) is not None
    may_be_too_large = len(body) > MAX_RECORD_JSON_BYTES
    records: list[Record] = []
    rejected: list[RejectedRecord] = []
    for index, item in enumerate(items):
        prefix: tuple[str | int, ...] = () if single else ("records", index)
        parsed = parse_record(
            item,
            index=index,
            message_id=message_id,
            path=prefix,
            suspicious=suspicious,
            may_be_too_large=may_be_too_large,
        )
        if isinstance(parsed, Record):
            records.append(parsed)
        else:
            rejected.append(parsed)
    return ParsedMessage(records, rejected, single)


def _load(text: str) -> tuple[Any, bool] | Problem:
    try:
        return loads_guarded(text)
    except RecursionError:
        return Problem(Code.NESTING_TOO_DEEP, "the JSON is nested too deeply to be a dataverse-sync message")
    except json.JSONDecodeError as exc:
        hint = _double_encoding_hint(text)
        if hint is not None:
            return hint
        return Problem(Code.INVALID_JSON, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")


def _double_encoding_hint(text: str) -> Problem | None:
    """Base64 of JSON where JSON was expected: the producer encoded twice, or the queue encoding disagrees."""
    candidate = text.strip()
    if len(candidate) < 4 or not re.fullmatch(r"[A-Za-z0-9+/=\s]+", candidate):
        return None
    try:
        inner = base64.b64decode(candidate, validate=False).decode("utf-8").lstrip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not inner.startswith(("{", "[")):
        return None
    return Problem(
        Code.DOUBLE_ENCODED,
        "the message body is base64-encoded JSON: the producer encoded it twice, or host.json messageEncoding "
        "does not match the producer (send the JSON text through a base64 encode policy, exactly once)",
    )


def _records_of(document: Any) -> tuple[list[Any], bool] | Problem:
    if isinstance(document, list):
        return Problem(
            Code.NOT_A_MESSAGE,
            f'a message is one record object or {{"schema": "{SCHEMA_V1}", "records": [...]}}, not a bare array',
        )
    if not isinstance(document, dict):
        return Problem(Code.NOT_A_MESSAGE, f"a message is a JSON object, not {_json_type(document)}")
    if "schema" not in document:
        return [document], True
    problem = _envelope_problem(document)
    if problem is not None:
        return problem
    return document["records"], False


def _envelope_problem(document: dict[str, Any]) -> Problem | None:
    schema = document["schema"]
    if schema not in SUPPORTED_SCHEMAS:
        return Problem(
            Code.UNSUPPORTED_SCHEMA,
            f"schema {quote(schema)} is not supported (supported: {', '.join(SUPPORTED_SCHEMAS)})",
            "schema",
        )
    if isinstance(document, _DuplicateMembers):
        return Problem(Code.DUPLICATE_MEMBER, f"member {quote(document.duplicates[0])} appears more than once")
    unknown = sorted(set(document) - {"schema", "records"})
    if unknown:
        return Problem(Code.NOT_A_MESSAGE, "unknown member (allowed: schema, records)", join_path(unknown[0]))
    records = document.get("records")
    if not isinstance(records, list):
        return Problem(Code.NOT_A_MESSAGE, "must be an array of records", "records")
    if not records:
        return Problem(Code.NO_RECORDS, "the message holds no records", "records")
    return None


def parse_record(
    item: Any,
    *,
    index: int,
    message_id: str,
    path: tuple[str | int, ...] = (),
    suspicious: bool = True,
    may_be_too_large: bool = True,
) -> Record | RejectedRecord:
    """One record; `suspicious`/`may_be_too_large` False skip scans the caller has ruled out for the message."""
    delivery = _delivery_of(item)
    ref = delivery.ref or f"{message_id}:{index}"
    checked = _validated(item, path, suspicious=suspicious, may_be_too_large=may_be_too_large)
    if isinstance(checked, Problem):
        return RejectedRecord(index, _bounded(_without_delivery(item)), checked, ref, delivery)
    spec = checked
    return Record(
        ref=ref,
        index=index,
        raw=_without_delivery(item),
        environment=spec.environment,
        table=spec.table,
        operation=Operation(spec.operation),
        key=dict(spec.key),
        data=dict(spec.data),
        lookups={name: Lookup(table=lk.table, key=dict(lk.key)) for name, lk in spec.lookups.items()},
        source_id=spec.source_id,
        sequence=spec.sequence,
        caller_object_id=spec.caller_object_id,
        delivery=delivery,
    )


def _validated(
    item: Any, path: tuple[str | int, ...], *, suspicious: bool, may_be_too_large: bool
) -> RecordSpec | Problem:
    """The record's spec, or its first problem: values no record may hold, then the schema, then the rules
    across members (key, delete) and the size."""
    problem = _scan(item, path) if suspicious else None
    if problem is not None:
        return problem
    try:
        spec = RecordSpec.model_validate(item)
    except ValidationError as exc:
        return _problem_from(exc, path)
    # A valid record nests at most 4 levels: measuring and copying it is safe.
    return _check_semantics(spec, path) or (_check_size(item, path) if may_be_too_large else None) or spec


def _delivery_of(item: Any) -> Delivery:
    """The retry state, read leniently here (strictly by RecordSpec) so that even a rejected record keeps its ref."""
    state = item.get("delivery") if isinstance(item, dict) else None
    if not isinstance(state, dict):
        return Delivery()
    try:
        spec = DeliverySpec.model_validate(state)
    except ValidationError:
        return Delivery()
    return Delivery(**spec.model_dump())


def _without_delivery(item: Any) -> Any:
    if isinstance(item, dict) and "delivery" in item:
        return {k: v for k, v in item.items() if k != "delivery"}
    return item


_MAX_KEPT_DEPTH = 16
_CUT = "…(nested too deeply, cut by dataverse-sync)"


def _bounded(value: Any, depth: int = 0) -> JsonValue:
    """A rejected record as plain JSON for its dead letter: marker objects back to their text, and nesting cut
    at 16 levels (a record nested hundreds deep would overflow the stack of json.dumps later)."""
    if isinstance(value, _OutOfRange):
        return value.text
    if isinstance(value, dict | list) and depth >= _MAX_KEPT_DEPTH:
        return _CUT
    if isinstance(value, dict):
        return {k: _bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_bounded(v, depth + 1) for v in value]
    return value  # type: ignore[no-any-return]


def _scan(value: Any, path: tuple[str | int, ...]) -> Problem | None:
    """Depth-first search for values no record may hold, reporting the first with its path."""
    for where, problem in _walk(value, path, depth=0):
        return Problem(problem[0], problem[1], join_path(*where))
    return None


_MAX_RECORD_DEPTH = 6  # record > lookups > name > key > value; anything deeper is not a record


def _walk(
    value: Any, path: tuple[str | int, ...], depth: int
) -> Iterator[tuple[tuple[str | int, ...], tuple[Code, str]]]:
    if depth > _MAX_RECORD_DEPTH:
        return  # no valid record nests this deep: the schema check rejects it, without recursing further
    if isinstance(value, _OutOfRange):
        yield path, (Code.NUMBER_OUT_OF_RANGE, f"number {quote(value.text)} cannot be stored (64-bit, finite)")
    elif isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            yield path, (Code.INVALID_TEXT, problem)
    elif isinstance(value, dict):
        if isinstance(value, _DuplicateMembers):
            yield path, (Code.DUPLICATE_MEMBER, f"member {quote(value.duplicates[0])} appears more than once")
        for name, item in value.items():
            problem = _text_problem(name)
            if problem:
                yield (*path, name), (Code.INVALID_TEXT, f"member name {problem}")
            yield from _walk(item, (*path, name), depth + 1)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _walk(item, (*path, position), depth + 1)


def _text_problem(text: str) -> str | None:
    if _SURROGATE.search(text):
        return "contains an unpaired UTF-16 surrogate (not valid Unicode text)"
    match = _CONTROL.search(text)
    if match:
        return f"contains control character U+{ord(match.group()):04X} at offset {match.start()}"
    return None


def _check_size(item: Any, path: tuple[str | int, ...]) -> Problem | None:
    size = json_size(item)  # only for valid records: no markers, shallow
    if size > MAX_RECORD_JSON_BYTES:
        return Problem(
            Code.RECORD_TOO_LARGE,
            f"the record is {size} bytes of JSON; at most {MAX_RECORD_JSON_BYTES} fit a queue message",
            join_path(*path),
        )
    return None


def _check_semantics(spec: RecordSpec, path: tuple[str | int, ...]) -> Problem | None:
    if spec.operation != "create" and not spec.key:
        return Problem(
            Code.KEY_REQUIRED,
            f"{spec.operation} needs a key: alternate-key columns or the primary id column",
            join_path(*path, "key"),
        )
    if spec.operation == "delete" and (spec.data or spec.lookups):
        return Problem(Code.DELETE_WITH_DATA, "a delete carries no data or lookups", join_path(*path, "data"))
    for where, key in [(("key",), spec.key)] + [(("lookups", n, "key"), lk.key) for n, lk in spec.lookups.items()]:
        size = _key_bytes(key)
        if size > MAX_KEY_BYTES:
            return Problem(
                Code.KEY_TOO_LARGE,
                f"the key is about {size} bytes; Dataverse keys are at most {MAX_KEY_BYTES} bytes",
                join_path(*path, *where),
            )
    return None


def _key_bytes(key: Mapping[str, KeyValue]) -> int:
    return sum(len(v.encode("utf-16-le")) if isinstance(v, str) else 8 for v in key.values())


def _problem_from(exc: ValidationError, path: tuple[str | int, ...]) -> Problem:
    errors = exc.errors(include_url=False, include_input=False)
    described = [_describe(error, path) for error in errors]
    first_path, first_message = described[0]
    cause = errors[0].get("ctx", {}).get("error")
    return Problem(
        cause.code if isinstance(cause, ContractError) else Code.SCHEMA_VIOLATION,
        first_message,
        first_path,
        tuple(f"{p}: {m}" if p else m for p, m in described[1:10]),
    )


_PLAIN_MESSAGES = {
    "extra_forbidden": "unknown member",
    "missing": "required",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "too_short": "must not be empty",
}


def _describe(error: ErrorDetails, path: tuple[str | int, ...]) -> tuple[str, str]:
    loc = [part for part in error["loc"] if part != "[key]"]
    where = join_path(*path, *loc)
    kind = error["type"]
    if kind == "value_error":
        return where, str(error.get("ctx", {}).get("error", error["msg"]))
    if kind == "too_long":
        return where, error["msg"].replace("Dictionary", "object").replace("items", "members")
    return where, _PLAIN_MESSAGES.get(kind, error["msg"])


_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float, _OutOfRange), "a number"),
    (str, "a string"),
    (list, "an array"),
    (dict, "an object"),
)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    for kinds, name in _JSON_TYPES:
        if isinstance(value, kinds):
            return name
    return type(value).__name__
