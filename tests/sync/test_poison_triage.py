"""Poison triage: re-queue transient causes a bounded number of times, dead-letter everything else."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.queues.names import RECORDS_POISON_QUEUE, RECORDS_QUEUE
from shared.sync import PoisonTriage, RecordsHandler, RetryLater, SyncPolicy
from shared.sync.ports import Outcome
from tests.sync.fakes import (
    FakeClock,
    FakePorts,
    MemoryDeadLetters,
    MemorySender,
    account,
    envelope,
    message,
    outcome,
)

OUTAGE = outcome(Outcome.TRANSIENT, 503, None, "Service Unavailable")


def triage(policy: SyncPolicy | None = None) -> tuple[PoisonTriage, MemoryDeadLetters, MemorySender]:
    dead_letters, sender = MemoryDeadLetters(), MemorySender()
    handler = PoisonTriage(dead_letters=dead_letters, sender=sender, clock=FakeClock(), policy=policy or SyncPolicy())
    return handler, dead_letters, sender


def poison_envelope(*, requeues: int = 0, kind: str = "transient") -> dict[str, Any]:
    records = [
        account("A-1", environment="contoso") | {"delivery": {"ref": "orig:0", "transient_attempts": 5,
                                                              "poison_requeues": requeues}},
        account("A-2", environment="contoso") | {"delivery": {"ref": "orig:1", "transient_attempts": 5,
                                                              "poison_requeues": requeues}},
    ]  # fmt: skip
    return {
        "schema": "dataverse-sync/poison-v1",
        "cause": {"kind": kind, "error_class": "TransientWriteFailure", "status": 503, "message": "Service Unavailable",
                  "request_id": "req-1"},
        "original": {"queue": RECORDS_QUEUE, "message_id": "orig", "dequeue_count": 5},
        "poisoned_at": "2025-03-01T12:00:00+00:00",
        "records": records,
    }  # fmt: skip


def poison_message(body: object, id: str = "p1") -> object:
    return message(body, id=id, queue=RECORDS_POISON_QUEUE)


def test_a_transient_cause_is_requeued_with_a_delay_and_a_counted_requeue():
    handler, dead_letters, sender = triage(SyncPolicy(poison_requeue_limit=3, poison_requeue_delay_seconds=300))
    report = handler.handle(poison_message(poison_envelope(requeues=1)))  # type: ignore[arg-type]
    assert report.outcome == "requeued"
    assert not dead_letters.texts
    [(queue, text, delay)] = sender.sent
    assert (queue, delay) == (RECORDS_QUEUE, 300)
    records = json.loads(text)["records"]
    assert [r["delivery"]["ref"] for r in records] == ["orig:0", "orig:1"]
    assert [r["delivery"]["poison_requeues"] for r in records] == [2, 2]
    assert all("transient_attempts" not in r["delivery"] for r in records)  # fresh attempts after a requeue


def test_past_the_requeue_limit_each_record_is_dead_lettered_with_the_cause():
    handler, dead_letters, sender = triage(SyncPolicy(poison_requeue_limit=3))
    handler.handle(poison_message(poison_envelope(requeues=3)))  # type: ignore[arg-type]
    assert not sender.sent
    entries = dead_letters.entries
    assert [e["ref"] for e in entries] == ["orig:0", "orig:1"]
    entry = entries[0]
    assert entry["reason"]["kind"] == "retries_exhausted"
    assert entry["reason"]["code"] == "transient_exhausted"
    assert "TransientWriteFailure: Service Unavailable" in entry["reason"]["message"]
    assert entry["dataverse"] == {"status": 503, "message": "Service Unavailable", "request_id": "req-1"}
    assert entry["source"] == {"queue": RECORDS_QUEUE, "message_id": "orig", "dequeue_count": 5}
    assert (entry["environment"], entry["table"]) == ("contoso", "account")
    assert entry["record"] == account("A-1", environment="contoso")


def test_an_unknown_cause_is_not_requeued():
    handler, dead_letters, sender = triage()
    handler.handle(poison_message(poison_envelope(kind="unknown")))  # type: ignore[arg-type]
    assert not sender.sent
    assert len(dead_letters.texts) == 2


def test_a_bare_body_poisoned_by_the_host_becomes_replayable_dead_letters():
    handler, dead_letters, sender = triage()
    report = handler.handle(poison_message(envelope(account("A-1"), {"table": "BAD"}), id="new-id"))  # type: ignore[arg-type]
    assert report.outcome == "dead_lettered"
    assert not sender.sent
    by_ref = {e["ref"]: e for e in dead_letters.entries}
    assert by_ref["new-id:0"]["reason"]["kind"] == "poisoned"
    assert by_ref["new-id:0"]["reason"]["code"] == "host_poisoned"
    assert by_ref["new-id:0"]["record"] == account("A-1")
    assert by_ref["new-id:0"]["source"]["queue"] == RECORDS_POISON_QUEUE
    assert by_ref["new-id:1"]["reason"]["kind"] == "invalid_record"


def test_an_unparseable_poisoned_body_is_dead_lettered_as_the_invalid_message_it_is():
    handler, dead_letters, _ = triage()
    handler.handle(poison_message(b"\x00\x01 not json"))  # type: ignore[arg-type]
    [entry] = dead_letters.entries
    assert entry["reason"]["kind"] == "invalid_message"
    assert entry["raw_message"] == "\x00\x01 not json"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(st.text(), st.text())))
def test_triage_never_fails_on_content(body):
    handler, dead_letters, sender = triage()
    handler.handle(poison_message(body))  # type: ignore[arg-type]
    assert dead_letters.texts or sender.sent


def test_an_outage_longer_than_the_retries_goes_through_poison_and_requeue_and_then_lands():
    """records handler -> RetryLater x4 -> poison envelope -> triage requeue -> healthy again -> written."""
    down = True
    fakes = FakePorts.answering(lambda env, w: OUTAGE if down else Outcome.WRITTEN)
    writer, dead_letters, sender = fakes.writer, fakes.dead_letters, fakes.sender
    handler = RecordsHandler(fakes.engine)
    poison = PoisonTriage(dead_letters=dead_letters, sender=sender, clock=fakes.clock, policy=fakes.policy)
    body = envelope(account("A-1"), account("A-2"))
    for dequeue_count in range(1, 5):
        with pytest.raises(RetryLater):
            handler.handle(message(body, id="orig", dequeue_count=dequeue_count))
    assert handler.handle(message(body, id="orig", dequeue_count=5)).outcome == "poisoned"
    [(queue, poisoned, _)] = sender.sent
    assert queue == RECORDS_POISON_QUEUE
    sender.sent.clear()
    assert poison.handle(message(json.loads(poisoned), id="p1", queue=queue)).outcome == "requeued"
    [(queue, requeued, _)] = sender.sent
    assert queue == RECORDS_QUEUE
    down = False
    writer.calls.clear()
    report = handler.handle(message(json.loads(requeued), id="again"))
    assert report.tally.written == 2
    assert [w.ref for w in writer.written] == ["orig:0", "orig:1"]  # correlation survives the whole trip
    assert not dead_letters.texts


def test_an_invalid_record_is_dead_lettered_as_the_records_handler_does_whole_and_named():
    """The same entry as on the records queue: a non-object item as its JSON text (never cut short without the
    truncation marker), an object with the environment and table it names, so operators can filter on them."""
    item = "x" * 20_000
    body = {
        "schema": "dataverse-sync/v1",
        "records": [account("A-1"), item, {"environment": "contoso", "table": "BAD"}],
    }
    handler, dead_letters, _ = triage()
    handler.handle(poison_message(body, id="new-id"))  # type: ignore[arg-type]
    fakes = FakePorts()
    RecordsHandler(fakes.engine).handle(message(body, id="new-id"))
    expected = {e["ref"]: e for e in fakes.dead_letters.entries}
    by_ref = {e["ref"]: e for e in dead_letters.entries}
    assert by_ref["new-id:1"]["raw_message"] == json.dumps(item)
    assert (by_ref["new-id:2"]["environment"], by_ref["new-id:2"]["table"]) == ("contoso", "BAD")
    for ref in ("new-id:1", "new-id:2"):
        for member in ("reason", "record", "raw_message", "environment", "table", "operation", "truncated"):
            assert by_ref[ref].get(member) == expected[ref].get(member), (ref, member)


def test_a_poisoned_body_its_adapter_could_not_decode_is_dead_lettered_as_sent():
    handler, dead_letters, sender = triage()
    sent = message(b"not base64 \xff", queue=RECORDS_POISON_QUEUE)
    handler.handle(dataclasses.replace(sent, encoding_error="not valid base64"))
    assert not sender.sent
    [entry] = dead_letters.entries
    assert (entry["reason"]["code"], entry["reason"]["message"]) == ("queue_encoding", "not valid base64")
    assert entry["raw_message"] == "not base64 \\xff"
