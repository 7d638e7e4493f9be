"""The records handler over in-memory ports: every record ends written, dead-lettered, re-scheduled or retried."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shared.queues.names import RECORDS_POISON_QUEUE, RECORDS_QUEUE
from shared.sync import RecordsHandler, RetryLater, SyncPolicy
from shared.sync.contract import MAX_MESSAGE_JSON_BYTES
from shared.sync.deadletter import TRUNCATION_MARKER
from shared.sync.ports import Operation, Outcome, RecordWrite
from tests.sync.fakes import (
    FakePorts,
    account,
    catalog,
    contact,
    envelope,
    message,
    outcome,
)


class Rig(FakePorts):
    @property
    def handler(self) -> RecordsHandler:
        return RecordsHandler(self.engine)


rig = Rig.answering


def by_key(answers: dict[str, Outcome | Any], default: Outcome = Outcome.WRITTEN):
    """A writer decision by the record's first key value."""

    def decide(environment: str, write: RecordWrite):
        value = next(iter(write.key.values()), None) if write.key else write.data.get("subject")
        return answers.get(str(value), default)

    return decide


# --- written --------------------------------------------------------------------------------------------------


def test_a_valid_message_is_written_in_one_writer_call_per_wave():
    r = rig()
    report = r.handler.handle(message(envelope(account("A-1"), account("A-2"), contact("c@x"))))
    assert report.outcome == "completed"
    assert (report.tally.records, report.tally.written, report.tally.dead_lettered) == (3, 3, 0)
    [(environment, writes, _)] = r.writer.calls
    assert environment == "contoso"
    assert [(w.table, w.key) for w in writes] == [
        ("account", {"accountnumber": "A-1"}),
        ("account", {"accountnumber": "A-2"}),
        ("contact", {"emailaddress1": "c@x"}),
    ]
    assert not r.sender.sent
    assert not r.dead_letters.texts


def test_the_writer_gets_the_deadline_of_the_time_budget():
    r = rig(policy=SyncPolicy(time_budget_seconds=100))
    r.handler.handle(message(account("A-1")))
    assert r.writer.calls[0][2] == r.clock.monotonic() + 100


def test_parents_are_written_before_children_of_the_same_message():
    r = rig()
    r.handler.handle(message(envelope(contact("c@x", parent="A-1"), account("A-1"))))
    assert [[w.table for w in writes] for _, writes, _ in r.writer.calls] == [["account"], ["contact"]]


def test_records_go_to_their_own_environment():
    r = rig(catalog=catalog("contoso", "fabrikam"))
    r.handler.handle(message(envelope(account("A", environment="fabrikam"), account("B", environment="contoso"))))
    assert sorted(env for env, _, _ in r.writer.calls) == ["contoso", "fabrikam"]


def test_a_repeated_key_is_written_once_with_the_newest_values_and_the_loser_is_reported(caplog):
    r = rig()
    caplog.set_level(logging.INFO, logger="dataverse_sync")
    report = r.handler.handle(message(envelope(account("A", sequence=2, data={"name": "new"}),
                                               account("A", sequence=1, data={"name": "old"}))))  # fmt: skip
    assert [w.data for w in r.writer.written] == [{"name": "new"}]
    assert report.tally.superseded == 1
    assert "record.superseded ref=m1:1 by=m1:0" in caplog.text


def test_a_duplicate_delivery_sends_the_same_idempotent_upserts_again():
    r = rig()
    body = envelope(account("A-1"), contact("c@x", parent="A-1"))
    r.handler.handle(message(body))
    first = list(r.writer.written)
    r.handler.handle(message(body, dequeue_count=2))
    assert r.writer.written[len(first) :] == first
    assert all(w.operation is Operation.UPSERT for w in first)


# --- invalid input ------------------------------------------------------------------------------------------


def test_invalid_json_is_dead_lettered_whole_and_completes():
    r = rig()
    report = r.handler.handle(message(b'{"table": "account", oops}', id="bad-1", dequeue_count=1))
    assert report.outcome == "completed"
    assert not r.writer.calls
    [entry] = r.dead_letters.entries
    assert entry["reason"]["kind"] == "invalid_message"
    assert entry["reason"]["code"] == "invalid_json"
    assert entry["raw_message"] == '{"table": "account", oops}'
    assert entry["source"] == {
        "queue": RECORDS_QUEUE,
        "message_id": "bad-1",
        "dequeue_count": 1,
        "inserted_on": "2025-03-01T00:00:00+00:00",
    }
    assert entry["schema"] == "dataverse-sync/deadletter-v1"


def test_invalid_records_are_dead_lettered_while_the_valid_ones_beside_them_are_written():
    r = rig()
    body = envelope(
        account("A-1"),
        {"table": "account"},  # key missing
        account("A-2", environment="northwind"),
        {"table": "lead", "key": {"leadid": "x"}},
        account("A-3", data={"name": "x", "bogus column": 1}),
        account("A-4"),
    )
    report = r.handler.handle(message(body))
    assert [w.key["accountnumber"] for w in r.writer.written] == ["A-1", "A-4"]
    assert report.tally.written == 2
    assert report.tally.dead_lettered == 4
    got = sorted((e["reason"]["code"], e["reason"]["path"], e["ref"]) for e in r.dead_letters.entries)
    assert got == sorted(
        [
            ("key_required", "records[1].key", "m1:1"),
            ("unknown_environment", "records[2].environment", "m1:2"),
            ("unknown_table", "records[3].table", "m1:3"),
            ("schema_violation", 'records[4].data["bogus column"]', "m1:4"),
        ]
    )
    northwind = next(e for e in r.dead_letters.entries if e["ref"] == "m1:2")
    assert northwind["record"] == account("A-2", environment="northwind")


def test_a_message_that_the_adapter_could_not_decode_is_dead_lettered():
    r = rig()
    msg = message(b"not base64!")
    msg = type(msg)(**{**msg.__dict__, "encoding_error": "not valid base64 (host.json messageEncoding=base64)"})
    r.handler.handle(msg)
    assert r.dead_letters.codes() == ["queue_encoding"]


def test_a_huge_invalid_message_is_dead_lettered_truncated_with_a_marker_and_hash():
    r = rig()
    body = b"x" * 200_000
    r.handler.handle(message(body))
    [text] = r.dead_letters.texts
    assert len(text.encode()) <= MAX_MESSAGE_JSON_BYTES
    entry = json.loads(text)
    assert entry["raw_message"].endswith(TRUNCATION_MARKER)
    assert entry["truncated"]["original_bytes"] == 200_000
    assert len(entry["truncated"]["sha256"]) == 64


# --- permanent, dependency --------------------------------------------------------------------------------


def test_a_permanent_failure_is_dead_lettered_with_dataverse_details_and_the_rest_stays_written():
    refused = outcome(Outcome.PERMANENT, 400, "0x80044331", "A validation error occurred.")
    r = rig(by_key({"A-2": refused}))
    report = r.handler.handle(message(envelope(account("A-1"), account("A-2"), account("A-3"))))
    assert (report.tally.written, report.tally.dead_lettered, report.outcome) == (2, 1, "completed")
    [entry] = r.dead_letters.entries
    assert entry["reason"]["kind"] == "rejected"
    assert entry["dataverse"] == {
        "status": 400,
        "code": "0x80044331",
        "message": "A validation error occurred.",
        "request_id": "req-x",
    }
    assert (entry["environment"], entry["table"], entry["operation"], entry["ref"]) == (
        "contoso",
        "account",
        "upsert",
        "m1:1",
    )
    assert entry["record"] == account("A-2")
    assert entry["attempts"] == 1


def test_a_dead_lettered_winner_names_the_records_it_superseded():
    r = rig(by_key({"A": outcome(Outcome.PERMANENT, 400, "0x1", "bad")}))
    r.handler.handle(message(envelope(account("A", sequence=1), account("A", sequence=2))))
    [entry] = r.dead_letters.entries
    assert entry["ref"] == "m1:1"
    assert entry["superseded_refs"] == ["m1:0"]


def test_a_missing_parent_is_rescheduled_with_a_delay_then_dead_lettered_after_the_limit():
    r = rig(by_key({"c@x": outcome(Outcome.DEPENDENCY, 400, "0x80040217", "account does not exist")}),
            policy=SyncPolicy(dependency_retry_limit=2, dependency_retry_delay_seconds=60))  # fmt: skip
    current = message(envelope(account("A-1"), contact("c@x", parent="NOPE")))
    for attempt in (1, 2):
        report = r.handler.handle(current)
        assert report.tally.rescheduled == 1
        [(queue, text, delay)] = r.sender.sent
        assert (queue, delay) == (RECORDS_QUEUE, 60)
        [record] = json.loads(text)["records"]
        assert record["delivery"]["ref"] == "m1:1"
        assert record["delivery"]["dependency_attempts"] == attempt
        assert record["environment"] == "contoso"
        r.sender.sent.clear()
        current = message(json.loads(text), id=f"retry-{attempt}")
    report = r.handler.handle(current)
    assert report.tally.dead_lettered == 1
    [entry] = r.dead_letters.entries
    assert entry["reason"]["kind"] == "missing_parent"
    assert entry["reason"]["code"] == "parent_not_found"
    assert entry["ref"] == "m1:1"
    assert entry["record"] == contact("c@x", parent="NOPE") | {"environment": "contoso"}
    assert entry["attempts"] == 3


# --- transient --------------------------------------------------------------------------------------------


OUTAGE = outcome(Outcome.TRANSIENT, 503, None, "Service Unavailable")


def test_when_nothing_settles_the_handler_raises_so_the_host_retries_the_message():
    r = rig(lambda env, w: OUTAGE)
    with pytest.raises(RetryLater, match="attempt 1 of 5"):
        r.handler.handle(message(envelope(account("A-1"), account("A-2")), dequeue_count=1))
    assert not r.sender.sent
    assert not r.dead_letters.texts


def test_on_the_last_allowed_attempt_a_poison_envelope_records_why_and_the_message_completes():
    r = rig(lambda env, w: OUTAGE)
    report = r.handler.handle(message(envelope(account("A-1"), account("A-2")), id="orig", dequeue_count=5))
    assert report.outcome == "poisoned"
    [(queue, text, delay)] = r.sender.sent
    assert (queue, delay) == (RECORDS_POISON_QUEUE, 0)
    poison = json.loads(text)
    assert poison["schema"] == "dataverse-sync/poison-v1"
    assert poison["cause"] == {
        "kind": "transient",
        "error_class": "TransientWriteFailure",
        "status": 503,
        "request_id": "req-x",
        "message": "Service Unavailable",
    }
    assert poison["original"]["message_id"] == "orig"
    assert poison["original"]["dequeue_count"] == 5
    assert [rec["delivery"]["ref"] for rec in poison["records"]] == ["orig:0", "orig:1"]
    assert [rec["delivery"]["transient_attempts"] for rec in poison["records"]] == [5, 5]


def test_after_partial_progress_only_the_unfinished_records_are_continued_and_creates_are_not_resent():
    task = {"table": "task", "operation": "create", "data": {"subject": "call"}}
    r = rig(by_key({"call": Outcome.WRITTEN, "A-1": OUTAGE}))
    report = r.handler.handle(message(envelope(task, account("A-1")), dequeue_count=3))
    assert report.outcome == "continued"
    assert (report.tally.written, report.tally.retried) == (1, 1)
    [(queue, text, delay)] = r.sender.sent
    assert (queue, delay) == (RECORDS_QUEUE, 30)
    [record] = json.loads(text)["records"]
    assert record["key"] == {"accountnumber": "A-1"}
    # this delivery made progress, so it does not count: only the two failed deliveries before it do
    assert record["delivery"]["transient_attempts"] == 2
    assert record["delivery"]["last_failure"] == "503 Service Unavailable"


def test_a_child_of_a_transiently_failed_parent_is_not_attempted_and_continues_with_it():
    r = rig(by_key({"A-1": OUTAGE}))
    r.handler.handle(message(envelope(account("A-1"), contact("c@x", parent="A-1"), account("A-2"))))
    assert [w.key for w in r.writer.written] == [{"accountnumber": "A-1"}, {"accountnumber": "A-2"}]
    [(_, text, _)] = r.sender.sent
    assert [rec["table"] for rec in json.loads(text)["records"]] == ["account", "contact"]


def test_work_not_started_within_the_time_budget_is_continued():
    r = rig(policy=SyncPolicy(time_budget_seconds=10))
    r.writer.seconds_per_call = 11  # the first wave uses up the budget
    report = r.handler.handle(message(envelope(contact("c@x", parent="A-1"), account("A-1"))))
    assert report.outcome == "continued"
    assert len(r.writer.calls) == 1
    [(_, text, _)] = r.sender.sent
    [record] = json.loads(text)["records"]
    assert record["table"] == "contact"
    assert "time budget" in record["delivery"]["last_failure"]


def test_a_writer_that_raises_loses_nothing():
    r = rig()
    r.writer.raises = ConnectionResetError("boom")
    with pytest.raises(RetryLater, match="ConnectionResetError"):
        r.handler.handle(message(account("A-1")))


def test_a_failing_dead_letter_queue_fails_the_invocation_rather_than_dropping_the_record():
    r = rig(by_key({"A-1": outcome(Outcome.PERMANENT, 400, "0x1", "bad")}))

    def broken(entry_json: str) -> str:
        raise OSError("dead-letter queue unavailable")

    r.dead_letters.put = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="dead-letter queue unavailable"):
        r.handler.handle(message(account("A-1")))


def test_logs_correlate_ids_and_never_contain_record_data(caplog):
    caplog.set_level(logging.DEBUG, logger="dataverse_sync")
    r = rig(by_key({"A-2": outcome(Outcome.PERMANENT, 400, "0x80044331", "validation")}))
    r.handler.handle(message(envelope(account("A-1", data={"name": "Secret Corp"}), account("A-2")), id="msg-9"))
    assert "record.written message_id=msg-9 ref=msg-9:0 request_id=req-msg-9:0" in caplog.text
    assert "record.dead_lettered message_id=msg-9 ref=msg-9:1" in caplog.text
    assert "Secret Corp" not in caplog.text
    done = [rec for rec in caplog.records if getattr(rec, "dvsync_event", None) == "message.done"]
    assert done[0].dvsync["written"] == 1


def test_an_unpaired_surrogate_is_dead_lettered_as_escaped_json():
    r = rig()
    r.handler.handle(message(b'{"table":"account","key":{"accountnumber":"\\ud800"}}'))
    [text] = r.dead_letters.texts
    text.encode("utf-8")  # the queue client encodes strictly
    entry = json.loads(text)
    assert entry["reason"]["code"] == "invalid_text"
    assert entry["record"]["key"]["accountnumber"] == "\ud800"
