"""The message contract: accepted forms, and a specific, path-addressed reason for everything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.sync.contract import (
    MAX_RECORD_JSON_BYTES,
    ParsedMessage,
    Record,
    RejectedMessage,
    parse_message,
)
from shared.sync.ports import Lookup, Operation
from shared.sync.problems import Code
from tests.sync.fakes import account, b64, contact, envelope


def parse(body: object) -> ParsedMessage | RejectedMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_message(raw, "msg-1")


def only_record(body: object) -> Record:
    parsed = parse(body)
    assert isinstance(parsed, ParsedMessage), parsed
    assert not parsed.rejected, parsed.rejected
    [record] = parsed.records
    return record


def rejection(body: object) -> tuple[Code, str, str]:
    """(code, path, message) of the single rejected record."""
    parsed = parse(body)
    assert isinstance(parsed, ParsedMessage), parsed
    assert not parsed.records
    [rejected] = parsed.rejected
    return rejected.problem.code, rejected.problem.path, rejected.problem.message


def message_rejection(body: object) -> tuple[Code, str]:
    parsed = parse(body)
    assert isinstance(parsed, RejectedMessage), parsed
    return parsed.problem.code, parsed.problem.message


# --- accepted ---------------------------------------------------------------------------------------------------


def test_a_bare_record_gets_defaults_and_a_ref_from_the_message_id():
    record = only_record(account("A-1"))
    assert record.ref == "msg-1:0"
    assert record.operation is Operation.UPSERT
    assert record.table == "account"
    assert record.key == {"accountnumber": "A-1"}
    assert record.environment is None
    assert record.raw == account("A-1")


def test_an_envelope_carries_records_in_order_with_indexed_refs():
    parsed = parse(envelope(account("A-1"), contact("a@x", parent="A-1"), account("A-2")))
    assert isinstance(parsed, ParsedMessage)
    assert [r.ref for r in parsed.records] == ["msg-1:0", "msg-1:1", "msg-1:2"]
    assert parsed.records[1].lookups == {
        "parentcustomerid_account": Lookup(table="account", key={"accountnumber": "A-1"})
    }
    assert not parsed.single


def test_every_documented_member_is_read():
    record = only_record(
        {
            "environment": "contoso",
            "table": "contact",
            "operation": "update",
            "key": {"firstname": "Ann", "lastname": "Lee"},
            "data": {"telephone1": "+1 555", "numberofchildren": 2, "creditlimit": 10.5, "donotemail": True,
                     "description": None},
            "lookups": {"new_ParentAccount": {"table": "account", "key": {"accountnumber": "A-1"}}},
            "source_id": "crm-42",
            "sequence": 17,
            "caller_object_id": "0B1EC7ED-0000-4000-8000-0000000C0101",
        }
    )  # fmt: skip
    assert record.environment == "contoso"
    assert record.operation is Operation.UPDATE
    assert record.data["description"] is None
    assert record.source_id == "crm-42"
    assert record.sequence == 17
    assert record.caller_object_id == "0b1ec7ed-0000-4000-8000-0000000c0101"


def test_a_timestamp_sequence_orders_like_its_instant():
    early = only_record(account("A", sequence="2024-05-01T12:00:00Z"))
    late = only_record(account("A", sequence="2024-05-01T14:00:00+01:00"))
    assert early.sequence is not None
    assert late.sequence is not None
    assert late.sequence - early.sequence == 3600 * 1_000_000


def test_a_create_needs_no_key():
    record = only_record({"table": "task", "operation": "create", "data": {"subject": "Call"}})
    assert record.key == {}


@pytest.mark.parametrize(
    "value",
    ["O'Brien", "' or 1 eq 1 --", "a/b?c", "100%", "Ünïcødé 🚀", "x" * 400, 42, 3.5, True],
    ids=["quote", "odata-injection", "url-breaking", "percent", "unicode", "long", "int", "float", "bool"],
)
def test_key_values_that_look_dangerous_are_data_not_errors(value):
    """Escaping is the writer's job (shared/dataverse/keys.py); the contract passes such values through."""
    record = only_record({"table": "account", "key": {"accountnumber": value}})
    assert record.key["accountnumber"] == value


def test_a_utf8_bom_is_ignored():
    assert only_record(b"\xef\xbb\xbf" + json.dumps(account("A")).encode()).table == "account"


# --- record-level rejections: only that record fails, with a path ------------------------------------------------


@pytest.mark.parametrize(
    ("record", "code", "path"),
    [
        ({"key": {"a": 1}}, Code.SCHEMA_VIOLATION, "records[1].table"),
        ({"table": "Account", "key": {"a": 1}}, Code.SCHEMA_VIOLATION, "records[1].table"),
        ({"table": "account\u0007", "key": {"a": 1}}, Code.INVALID_TEXT, "records[1].table"),
        ({"table": "account", "operation": "merge", "key": {"a": 1}}, Code.SCHEMA_VIOLATION, "records[1].operation"),
        ({"table": "account", "operation": "update"}, Code.KEY_REQUIRED, "records[1].key"),
        ({"table": "account", "key": {"a": 1}, "colour": "red"}, Code.SCHEMA_VIOLATION, "records[1].colour"),
        ({"table": "account", "key": {"a": [1]}}, Code.SCHEMA_VIOLATION, "records[1].key.a"),
        ({"table": "account", "key": {"a": ""}}, Code.SCHEMA_VIOLATION, "records[1].key.a"),
        ({"table": "account", "key": {"a": "x\ny"}}, Code.INVALID_TEXT, "records[1].key.a"),
        ({"table": "account", "key": {"Bad Name": 1}}, Code.SCHEMA_VIOLATION, 'records[1].key["Bad Name"]'),
        ({"table": "account", "key": {"a": 1}, "data": {"x": {"y": 1}}}, Code.SCHEMA_VIOLATION, "records[1].data.x"),
        ({"table": "account", "key": {"a": 1}, "data": {"x@odata.bind": "accounts(1)"}}, Code.SCHEMA_VIOLATION,
         'records[1].data["x@odata.bind"]'),
        ({"table": "account", "key": {"a": 1}, "data": {"x": "nul\u0000"}}, Code.INVALID_TEXT, "records[1].data.x"),
        ({"table": "account", "key": {"a": 1}, "lookups": {"p": {"table": "account", "key": {}}}},
         Code.SCHEMA_VIOLATION, "records[1].lookups.p.key"),
        ({"table": "account", "key": {"a": 1}, "lookups": {"p": "accounts(1)"}}, Code.SCHEMA_VIOLATION,
         "records[1].lookups.p"),
        ({"table": "account", "key": {"a": 1}, "caller_object_id": "bob"}, Code.SCHEMA_VIOLATION,
         "records[1].caller_object_id"),
        ({"table": "account", "key": {"a": 1}, "sequence": -1}, Code.SCHEMA_VIOLATION, "records[1].sequence"),
        ({"table": "account", "key": {"a": 1}, "sequence": "yesterday"}, Code.SCHEMA_VIOLATION, "records[1].sequence"),
        ({"table": "account", "key": {"a": 1}, "sequence": True}, Code.SCHEMA_VIOLATION, "records[1].sequence"),
        ({"table": "account", "operation": "delete", "key": {"a": 1}, "data": {"b": 2}}, Code.DELETE_WITH_DATA,
         "records[1].data"),
        ({"table": "account", "key": {"a": "é" * 451}}, Code.KEY_TOO_LARGE, "records[1].key"),
        ({"table": "account", "key": {f"c{i}": i for i in range(17)}}, Code.SCHEMA_VIOLATION, "records[1].key"),
        ({"table": "account", "environment": "../prod", "key": {"a": 1}}, Code.SCHEMA_VIOLATION,
         "records[1].environment"),
        ("account", Code.SCHEMA_VIOLATION, "records[1]"),
        (None, Code.SCHEMA_VIOLATION, "records[1]"),
    ],
)  # fmt: skip
def test_an_invalid_record_is_rejected_alone_with_its_path(record, code, path):
    parsed = parse(envelope(account("OK-1"), record, account("OK-2")))
    assert isinstance(parsed, ParsedMessage)
    assert [r.key["accountnumber"] for r in parsed.records] == ["OK-1", "OK-2"]
    [rejected] = parsed.rejected
    assert (rejected.problem.code, rejected.problem.path) == (code, path), rejected.problem
    assert rejected.raw == record
    assert rejected.ref == "msg-1:1"


def test_every_problem_of_a_record_is_listed_not_just_the_first():
    _code, _path, _ = rejection({"table": "X", "key": {"a": 1}, "colour": "red", "size": 1})
    parsed = parse({"table": "X", "key": {"a": 1}, "colour": "red", "size": 1})
    assert isinstance(parsed, ParsedMessage)
    assert set(parsed.rejected[0].problem.details) == {"colour: unknown member", "size: unknown member"}


@pytest.mark.parametrize(
    ("raw", "code", "path"),
    [
        (b'{"table":"account","key":{"a":123456789012345678901234567890}}', Code.NUMBER_OUT_OF_RANGE, "key.a"),
        (b'{"table":"account","key":{"a":1},"data":{"n":1' + b"0" * 5000 + b"}}", Code.NUMBER_OUT_OF_RANGE, "data.n"),
        (b'{"table":"account","key":{"a":1},"data":{"n":1e999}}', Code.NUMBER_OUT_OF_RANGE, "data.n"),
        (b'{"table":"account","key":{"a":NaN}}', Code.NUMBER_OUT_OF_RANGE, "key.a"),
        (b'{"table":"account","key":{"a":1},"data":{"n":-Infinity}}', Code.NUMBER_OUT_OF_RANGE, "data.n"),
        (b'{"table":"account","key":{"a":1},"data":{"x":1,"x":2}}', Code.DUPLICATE_MEMBER, "data"),
        (b'{"table":"account","table":"contact","key":{"a":1}}', Code.DUPLICATE_MEMBER, ""),
        (b'{"table":"account","key":{"a":"\\ud800"}}', Code.INVALID_TEXT, "key.a"),
        (b'{"table":"account","key":{"a":1},"data":{"\\u0000x":1}}', Code.INVALID_TEXT, 'data["\\u0000x"]'),
        (b'{"table":"account","key":{"a":1},"data":{"x":' + b"[" * 50 + b"]" * 50 + b"}}", Code.SCHEMA_VIOLATION,
         "data.x"),
        (b'{"table":"account","key":{"a":1},"data":{"x":' + b"[" * 50 + b'"\\u0001"' + b"]" * 50 + b"}}",
         Code.SCHEMA_VIOLATION, "data.x"),
    ],
)  # fmt: skip
def test_malicious_values_end_as_specific_record_problems(raw, code, path):
    got_code, got_path, message = rejection(raw)
    assert (got_code, got_path) == (code, path), message


def test_a_record_nested_hundreds_deep_is_rejected_and_kept_in_a_bounded_form():
    raw = b'{"schema":"dataverse-sync/v1","records":[{"table":"account","key":{"a":1},"x":' + b"[" * 900
    raw += b'"\\u0001"' + b"]" * 900 + b"}]}"
    parsed = parse_message(raw, "m")
    assert isinstance(parsed, ParsedMessage)
    [rejected] = parsed.rejected
    assert rejected.problem.path == "records[0].x"
    json.dumps(rejected.raw)  # shallow enough to serialise into a dead letter
    assert "nested too deeply" in json.dumps(rejected.raw)


def test_a_record_too_large_for_a_queue_message_is_rejected():
    big = account("A", data={"description": "x" * MAX_RECORD_JSON_BYTES})
    code, _path, message = rejection(big)
    assert code is Code.RECORD_TOO_LARGE
    assert str(MAX_RECORD_JSON_BYTES) in message


def test_error_messages_do_not_echo_huge_or_control_laden_input():
    name = "\u001b[31m" + "A" * 10_000
    _, path, message = rejection({"table": name, "key": {"a": 1}})
    assert len(message) < 300
    assert "\u001b" not in message
    assert "\u001b" not in path


def test_a_rejected_record_keeps_the_ref_of_its_delivery_state():
    parsed = parse(envelope({"table": "BAD", "delivery": {"ref": "orig:7", "transient_attempts": 2}}))
    assert isinstance(parsed, ParsedMessage)
    assert parsed.rejected[0].ref == "orig:7"
    assert parsed.rejected[0].delivery.transient_attempts == 2
    assert "delivery" not in parsed.rejected[0].raw  # type: ignore[operator]


# --- message-level rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", Code.EMPTY_BODY),
        (b"  \n ", Code.EMPTY_BODY),
        (b"\xff\xfe{}", Code.NOT_UTF8),
        (b'{"table": "account",', Code.INVALID_JSON),
        (b"<xml/>", Code.INVALID_JSON),
        (b"[" * 100_000, Code.NESTING_TOO_DEEP),
        (b64(json.dumps({"table": "account", "key": {"a": 1}})), Code.DOUBLE_ENCODED),
        (b"[]", Code.NOT_A_MESSAGE),
        (b'"account"', Code.NOT_A_MESSAGE),
        (b"42", Code.NOT_A_MESSAGE),
        (b'{"schema": "dataverse-sync/v2", "records": []}', Code.UNSUPPORTED_SCHEMA),
        (b'{"schema": "dataverse-sync/v1"}', Code.NOT_A_MESSAGE),
        (b'{"schema": "dataverse-sync/v1", "records": {}}', Code.NOT_A_MESSAGE),
        (b'{"schema": "dataverse-sync/v1", "records": []}', Code.NO_RECORDS),
        (b'{"schema": "dataverse-sync/v1", "records": [], "extra": 1}', Code.NOT_A_MESSAGE),
        (b'{"schema": "dataverse-sync/v1", "records": [1], "records": [2]}', Code.DUPLICATE_MEMBER),
    ],
    ids=lambda v: v.value if isinstance(v, Code) else None,
)
def test_unusable_messages_are_rejected_whole_with_a_specific_code(body, code):
    assert message_rejection(body)[0] is code


def test_the_json_error_names_line_and_column():
    code, message = message_rejection(b'{\n  "table": "account",\n  "key": {"a": 1,}\n}')
    assert code is Code.INVALID_JSON
    assert "line 3 column" in message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_no_byte_string_makes_the_parser_raise(body):
    parse_message(body, "fuzz")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["table", "key", "data", "lookups", "operation", "sequence", "x"]), json_values))
def test_no_json_record_makes_the_parser_raise(record):
    parsed = parse_message(json.dumps(record).encode(), "fuzz")
    if isinstance(parsed, ParsedMessage):
        assert len(parsed.records) + len(parsed.rejected) == 1
