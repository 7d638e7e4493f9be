"""Bad and malicious input through the real pipeline: every bad message or record ends as a dead-letter entry with
its specific reason (kind, code, path into the message), and the valid records beside it still land.

All cases are sent together and processed by one runner (as they would arrive in production, interleaved); each
case then checks its own dead letters, found by the id of the message that carried it. Reasons and codes:
docs/message-contract.md#reasons; entry format: #dead-letter-entries.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulators.runner import LocalFunctionsHost
from shared.queues.names import DEAD_LETTER_QUEUE, RECORDS_QUEUE
from tests.e2e.conftest import Pipeline, account, envelope

pytestmark = [pytest.mark.cloud, pytest.mark.azurite]

INVALID_MESSAGE, INVALID_RECORD = "invalid_message", "invalid_record"


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[Pipeline], str]  # sends the case's message, returns its id
    expect: list[tuple[str, str, str | None]]  # (kind, code, path) of each dead letter it must produce
    lands: tuple[str, ...] = ()  # contoso account numbers of the valid neighbours, which must be written


def text(body: str) -> Callable[[Pipeline], str]:
    """A message whose JSON text is given verbatim (for what json.dumps cannot produce), base64-encoded."""
    return lambda pipeline: pipeline.send(body)


def message(payload: Any) -> Callable[[Pipeline], str]:
    return lambda pipeline: pipeline.send(payload)


def records_text(*records: str) -> str:
    return '{"schema": "dataverse-sync/v1", "records": [' + ", ".join(records) + "]}"


def valid(number: str) -> str:
    return json.dumps(account(number))


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"x": value}
    return value


CASES = [
    Case(
        "invalid JSON",
        text('{"table": "account", "key": {"accountnumber": "J-1"}'),
        [(INVALID_MESSAGE, "invalid_json", None)],
    ),
    Case(
        "wrong schema version",
        message({"schema": "dataverse-sync/v9", "records": [account("J-2")]}),
        [(INVALID_MESSAGE, "unsupported_schema", "schema")],
    ),
    Case("a bare array", message([account("J-3")]), [(INVALID_MESSAGE, "not_a_message", None)]),
    Case("an empty message", lambda pipeline: pipeline.send_raw(""), [(INVALID_MESSAGE, "empty_body", None)]),
    Case("no records", message(envelope()), [(INVALID_MESSAGE, "no_records", "records")]),
    Case(
        "schema violations beside valid records",
        message(
            envelope(
                account("V-1"),
                {**account("J-4"), "colour": "red"},
                account("J-5", name={"first": "Contoso"}),
                {**account("J-6"), "table": "Account"},
                {**account("J-7"), "operation": "merge"},
                account("V-2"),
            )
        ),
        [
            (INVALID_RECORD, "schema_violation", "records[1].colour"),
            (INVALID_RECORD, "schema_violation", "records[2].data.name"),
            (INVALID_RECORD, "schema_violation", "records[3].table"),
            (INVALID_RECORD, "schema_violation", "records[4].operation"),
        ],
        lands=("V-1", "V-2"),
    ),
    Case(
        "unknown environment, unknown table, missing environment",
        message(
            envelope(
                account("V-3"),
                account("J-8", environment="northwind"),
                {
                    "environment": "contoso",
                    "table": "task",
                    "key": {"activityid": "7d3f3b0e-0000-4000-8000-000000000001"},
                },
                {"environment": "contoso", "table": "lead", "key": {"leadid": "7d3f3b0e-0000-4000-8000-000000000002"}},
                {k: v for k, v in account("J-9").items() if k != "environment"},  # two environments are configured
            )
        ),
        [
            (INVALID_RECORD, "unknown_environment", "records[1].environment"),
            (INVALID_RECORD, "unknown_table", "records[2].table"),
            (INVALID_RECORD, "unknown_table", "records[3].table"),
            (INVALID_RECORD, "environment_required", "records[4].environment"),
        ],
        lands=("V-3",),
    ),
    Case(
        "keys the configuration or the contract refuses",
        message(
            envelope(
                {**account("J-10"), "key": {"name": "Contoso"}},
                {**account("J-11"), "key": {}},
                account("J-12", accountnumber="J-13"),
                {
                    "environment": "contoso",
                    "table": "account",
                    "operation": "delete",
                    "key": {"accountnumber": "J-14"},
                    "data": {"name": "x"},
                },
                account("V-4"),
            )
        ),
        [
            (INVALID_RECORD, "not_an_alternate_key", "records[0].key"),
            (INVALID_RECORD, "key_required", "records[1].key"),
            (INVALID_RECORD, "key_conflict", "records[2].data.accountnumber"),
            (INVALID_RECORD, "delete_with_data", "records[3].data"),
        ],
        lands=("V-4",),
    ),
    Case(
        "an oversize record and an oversize key beside a valid record",
        message(envelope(account("J-15", description="x" * 46_500), account("J" * 460), account("V-5"))),
        [(INVALID_RECORD, "record_too_large", "records[0]"), (INVALID_RECORD, "key_too_large", "records[1].key")],
        lands=("V-5",),
    ),
    Case(
        "nesting deep enough to break a JSON parser",
        text('{"a":' * 5000 + "1" + "}" * 5000),
        [(INVALID_MESSAGE, "nesting_too_deep", None)],
    ),
    Case(
        "deep nesting inside a record beside a valid record",
        message(envelope(account("J-16", name=nested(60)), account("V-6"))),
        [(INVALID_RECORD, "schema_violation", "records[0].data.name")],
        lands=("V-6",),
    ),
    Case(
        "numbers no column can hold",
        text(
            records_text(
                '{"environment": "contoso", "table": "account", "key": {"accountnumber": "J-17"}, '
                '"data": {"numberofemployees": 1' + "0" * 400 + "}}",
                '{"environment": "contoso", "table": "account", "key": {"accountnumber": "J-18"}, '
                '"data": {"revenue": 1e999}}',
                '{"environment": "contoso", "table": "account", "key": {"accountnumber": "J-19"}, '
                '"data": {"revenue": NaN}}',
                valid("V-7"),
            )
        ),
        [
            (INVALID_RECORD, "number_out_of_range", "records[0].data.numberofemployees"),
            (INVALID_RECORD, "number_out_of_range", "records[1].data.revenue"),
            (INVALID_RECORD, "number_out_of_range", "records[2].data.revenue"),
        ],
        lands=("V-7",),
    ),
    Case(
        "control characters and unpaired surrogates",
        text(
            records_text(
                json.dumps(account("J-20", name="nul\u0000byte")),
                json.dumps(account("J-21", name="bell\u0007")),
                '{"environment": "contoso", "table": "account", "key": {"accountnumber": "J-22\\ud800"}}',
                json.dumps(account("J-23\n")),
                valid("V-8"),
            )
        ),
        [
            (INVALID_RECORD, "invalid_text", "records[0].data.name"),
            (INVALID_RECORD, "invalid_text", "records[1].data.name"),
            (INVALID_RECORD, "invalid_text", "records[2].key.accountnumber"),
            (INVALID_RECORD, "invalid_text", "records[3].key.accountnumber"),
        ],
        lands=("V-8",),
    ),
    Case(
        "member names that look like injection",
        message(
            envelope(
                account("J-24", **{"ownerid@odata.bind": "/systemusers(00000000-0000-0000-0000-000000000001)"}),
                account("J-25", **{"$filter": "name eq 'x'"}),
                {**account("J-26"), "table": "account; DROP TABLE contact"},
                {**account("J-27"), "lookups": {"../../$batch": {"table": "account", "key": {"accountnumber": "V-9"}}}},
                account("V-9"),
            )
        ),
        [
            (INVALID_RECORD, "schema_violation", 'records[0].data["ownerid@odata.bind"]'),
            (INVALID_RECORD, "schema_violation", 'records[1].data["$filter"]'),
            (INVALID_RECORD, "schema_violation", "records[2].table"),
            (INVALID_RECORD, "schema_violation", 'records[3].lookups["../../$batch"]'),
        ],
        lands=("V-9",),
    ),
    Case(
        "duplicate members",
        text(
            records_text(
                '{"environment": "contoso", "table": "account", "key": {"accountnumber": "J-28"}, '
                '"data": {"name": "a", "name": "b"}}',
                valid("V-10"),
            )
        ),
        [(INVALID_RECORD, "duplicate_member", "records[0].data")],
        lands=("V-10",),
    ),
    Case(
        "plain JSON where base64 is expected",
        lambda pipeline: pipeline.send_raw(json.dumps(account("J-29"))),
        [(INVALID_MESSAGE, "queue_encoding", None)],
    ),
    Case(
        "base64 applied twice",
        message(base64.b64encode(json.dumps(account("J-30")).encode()).decode()),
        [(INVALID_MESSAGE, "double_encoded", None)],
    ),
    Case(
        "bytes that are not UTF-8",
        lambda pipeline: pipeline.send_bytes(b'{"table": "account", "data": {"name": "\xff\xfe"}}'),
        [(INVALID_MESSAGE, "not_utf8", None)],
    ),
]


@dataclass
class Outcome:
    message_ids: dict[str, str]
    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by source message id
    accounts: set[str] = field(default_factory=set)
    host: LocalFunctionsHost | None = None
    depths: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def outcome(session_pipeline: Pipeline) -> Outcome:
    pipeline = session_pipeline
    pipeline.reset()
    result = Outcome({case.name: case.send(pipeline) for case in CASES})
    result.host = pipeline.run_until_idle()
    by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in pipeline.dead_letters():
        by_message[entry["source"]["message_id"]].append(entry)
    result.entries = dict(by_message)
    result.accounts = {row["accountnumber"] for row in pipeline.org("contoso").rows("account")}
    result.depths = pipeline.queue_depths()
    return result


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_bad_input_ends_as_a_dead_letter_with_its_reason(outcome: Outcome, case: Case):
    entries = outcome.entries.get(outcome.message_ids[case.name], [])
    reasons = sorted((e["reason"]["kind"], e["reason"]["code"], e["reason"].get("path")) for e in entries)
    assert reasons == sorted(case.expect)
    for entry in entries:
        assert entry["schema"] == "dataverse-sync/deadletter-v1"
        assert entry["id"]
        assert entry["dead_lettered_at"]
        assert entry["reason"]["message"]
        assert entry["source"]["queue"] == RECORDS_QUEUE
        if entry["reason"]["kind"] == INVALID_MESSAGE:
            assert "raw_message" in entry or "truncated" in entry  # what arrived, for the producer to fix
        else:
            assert "record" in entry
            assert entry["ref"].startswith(outcome.message_ids[case.name] + ":")
    assert set(case.lands) <= outcome.accounts


def test_only_the_valid_records_land_and_nothing_is_left_or_crashes(outcome: Outcome):
    landed = {number for case in CASES for number in case.lands}
    assert outcome.accounts == landed  # no record of a bad message, no bad record was written
    assert sum(len(entries) for entries in outcome.entries.values()) == sum(len(case.expect) for case in CASES)
    assert outcome.depths == {**dict.fromkeys(outcome.depths, 0), DEAD_LETTER_QUEUE: len(
        [e for entries in outcome.entries.values() for e in entries])}  # fmt: skip
    assert outcome.host is not None
    stats = outcome.host.stats
    assert (stats["sync_records"].invocations, stats["sync_records"].failures) == (len(CASES), 0)
    assert (stats["sync_records"].poisoned, stats["triage_poison"].invocations) == (0, 0)
