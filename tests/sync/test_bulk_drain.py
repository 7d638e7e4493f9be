"""Bulk drain: coalesce many small messages into big writer calls; delete messages only once settled."""

from __future__ import annotations

import json
from typing import Any

from shared.queues.names import BULK_QUEUE, RECORDS_POISON_QUEUE
from shared.sync import BulkDrain, SyncPolicy
from shared.sync.ports import Outcome, RecordWrite
from tests.sync.fakes import FakeBulkSource, FakePorts, account, envelope, outcome

OUTAGE = outcome(Outcome.TRANSIENT, 429, "0x80072322", "Number of requests exceeded the limit")


def drain(source: FakeBulkSource, decide: Any = None, **policy: Any):
    fakes = FakePorts.answering(decide, policy=SyncPolicy(**policy))
    return BulkDrain(fakes.engine, source), fakes.writer, fakes.dead_letters, fakes.sender


def test_many_small_messages_become_one_writer_call_and_are_all_deleted():
    source = FakeBulkSource()
    for i in range(100):
        source.put(account(f"A-{i}"), id=f"m{i}", minute=i % 60)
    bulk, writer, _, _ = drain(source)
    report = bulk.run()
    assert report.tally.written == 100
    assert len(writer.calls) == 1
    assert len(writer.calls[0][1]) == 100
    assert sorted(source.deleted) == sorted(f"m{i}" for i in range(100))
    assert report.queue_empty
    assert source.receive_calls == 4  # 32 + 32 + 32 + 4


def test_the_same_row_across_messages_is_written_once_newest_insertion_winning():
    source = FakeBulkSource()
    source.put(account("A", data={"name": "newest"}), id="late", minute=30)
    source.put(account("A", data={"name": "oldest"}), id="early", minute=1)
    source.put(account("A", data={"name": "middle"}), id="mid", minute=15)
    bulk, writer, _, _ = drain(source)
    report = bulk.run()
    assert [w.data for w in writer.written] == [{"name": "newest"}]
    assert report.tally.superseded == 2
    assert sorted(source.deleted) == ["early", "late", "mid"]


def test_a_round_stops_receiving_near_the_record_limit_and_the_run_drains_the_rest_in_more_rounds():
    source = FakeBulkSource()
    for i in range(20):
        source.put(envelope(*[account(f"A-{i}-{j}") for j in range(50)]), id=f"m{i}")
    bulk, writer, _, _ = drain(source, bulk_drain_max_records=260)
    report = bulk.run()
    assert [len(writes) for _, writes, _ in writer.calls] == [300, 300, 300, 100]  # one writer call per round
    assert report.rounds == 4
    assert report.tally.written == 1000
    assert len(source.deleted) == 20
    assert not source.visible
    assert report.queue_empty


def test_no_round_starts_after_half_the_time_budget():
    source = FakeBulkSource()
    for i in range(10):
        source.put(envelope(*[account(f"A-{i}-{j}") for j in range(10)]), id=f"m{i}")
    bulk, writer, _, _ = drain(source, bulk_drain_max_records=20, time_budget_seconds=100)
    writer.seconds_per_call = 30  # each round's write takes 30 s: rounds start at 0, 30 and 60 s
    report = bulk.run()
    assert report.rounds == 2  # the third would start at 60 s, past half of the 100 s budget
    assert report.tally.written == 40
    assert len(source.visible) == 6  # left for the next run
    assert not report.queue_empty


def test_a_round_that_released_messages_ends_the_run():
    source = FakeBulkSource()
    for i in range(4):
        source.put(account(f"A-{i}"), id=f"m{i}")
    bulk, writer, _, _ = drain(source, lambda env, w: OUTAGE, bulk_drain_max_records=2)
    report = bulk.run()
    assert report.rounds == 1  # the released messages would be received again at once: wait for the retry delay
    assert report.released == 2
    assert len(writer.calls) == 1


def test_invalid_messages_and_records_are_dead_lettered_and_their_messages_deleted():
    source = FakeBulkSource()
    source.put(b"{not json", id="broken")
    source.put(envelope(account("A-1"), {"table": "account"}), id="half")
    bulk, _, dead_letters, _ = drain(source)
    report = bulk.run()
    assert sorted(dead_letters.codes()) == ["invalid_json", "key_required"]
    assert report.tally.written == 1
    assert sorted(source.deleted) == ["broken", "half"]


def test_messages_whose_records_all_failed_transiently_are_released_for_a_later_run():
    source = FakeBulkSource()
    source.put(account("A-1"), id="m1")
    bulk, _, dead_letters, sender = drain(source, lambda env, w: OUTAGE, transient_retry_delay_seconds=30)
    report = bulk.run()
    assert report.released == 1
    assert source.released == [("m1", 30)]
    assert not source.deleted
    assert not sender.sent
    assert not dead_letters.texts


def test_a_message_with_some_records_written_continues_with_only_the_rest():
    source = FakeBulkSource()
    source.put(envelope(account("A-1"), account("A-2")), id="m1")

    def decide(env: str, write: RecordWrite):
        return OUTAGE if write.key["accountnumber"] == "A-2" else Outcome.WRITTEN

    bulk, _, _, sender = drain(source, decide)
    bulk.run()
    assert source.deleted == ["m1"]
    [(queue, text, delay)] = sender.sent
    assert (queue, delay) == (BULK_QUEUE, 30)
    assert [r["key"]["accountnumber"] for r in json.loads(text)["records"]] == ["A-2"]


def test_on_the_last_allowed_attempt_the_records_go_to_the_poison_queue_and_the_message_is_deleted():
    source = FakeBulkSource()
    source.put(account("A-1"), id="m1", dequeue_count=4)  # the 5th receive
    bulk, _, _, sender = drain(source, lambda env, w: OUTAGE)
    bulk.run()
    assert source.deleted == ["m1"]
    [(queue, text, _)] = sender.sent
    assert queue == RECORDS_POISON_QUEUE
    poison = json.loads(text)
    assert poison["cause"]["code"] == "0x80072322"
    assert poison["original"] == {"queue": BULK_QUEUE, "message_id": "m1", "dequeue_count": 5,
                                  "inserted_on": "2025-03-01T11:00:00+00:00"}  # fmt: skip


def test_an_empty_queue_is_a_quiet_run():
    bulk, writer, _, _ = drain(FakeBulkSource())
    report = bulk.run()
    assert report.queue_empty
    assert report.tally.messages == 0
    assert not writer.calls
