"""The producer helper: validate everything first, pack to fit 64 KiB, report exactly what was sent."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest

from shared.queues.producer import (
    InvalidRecords,
    PartialSendError,
    RecordProducer,
    pack_texts,
    send_records,
)
from shared.sync.contract import MAX_MESSAGE_JSON_BYTES, ParsedMessage, parse_message
from tests.queues.conftest import raw_client
from tests.sync.fakes import MemorySender, account, catalog, contact

QUEUE_MESSAGE_LIMIT = 64 * 1024


@pytest.mark.azurite
def test_records_are_sent_in_messages_the_queue_accepts_and_the_handler_parses(service, new_queue, sender):
    queue = new_queue("produce")
    records = [account(f"A-{i}", data={"name": "n" * 300, "description": "é" * 200}) for i in range(400)]
    report = send_records(sender, catalog("contoso"), records, queue=queue)
    assert report.records == 400
    assert len(report.messages) > 1
    firsts = [m.first for m in report.messages]
    assert firsts == [sum(m.count for m in report.messages[:i]) for i in range(len(report.messages))]
    stored = raw_client(service, queue).peek_messages(max_messages=32)
    assert len(stored) == len(report.messages)
    for message in stored:
        assert len(message.content) <= QUEUE_MESSAGE_LIMIT
        parsed = parse_message(base64.b64decode(message.content), message.id)
        assert isinstance(parsed, ParsedMessage)
        assert not parsed.rejected


def test_nothing_is_sent_when_any_record_is_invalid_and_every_problem_is_named():
    sender = MemorySender()
    records = [account("A-1"), {"table": "account"}, account("A-3", data={"when": datetime(2025, 1, 1)}),
               {"table": "lead", "key": {"x": 1}}, account("A-5", environment="nowhere")]  # fmt: skip
    with pytest.raises(InvalidRecords) as caught:
        send_records(sender, catalog("contoso"), records)
    assert not sender.sent
    assert [(e.index, e.code, e.path) for e in caught.value.errors] == [
        (1, "key_required", "key"),
        (2, "not_json", ""),
        (3, "unknown_table", "table"),
        (4, "unknown_environment", "environment"),
    ]
    assert "5 invalid" not in str(caught.value)
    assert "record 1 key:" in str(caught.value)


def test_the_environment_argument_fills_records_that_name_none():
    sender = MemorySender()
    send_records(sender, catalog("contoso", "fabrikam"), [account("A"), account("B", environment="contoso")],
                 environment="fabrikam")  # fmt: skip
    records = sender.records_to("dvsync-records")
    assert [r["environment"] for r in records] == ["fabrikam", "contoso"]


def test_a_failed_send_reports_exactly_which_records_went_out():
    class FailsOnThird(MemorySender):
        def send(self, queue: str, text: str, *, delay_seconds: int = 0) -> str:
            if len(self.sent) == 2:
                raise ConnectionError("storage unreachable")
            return super().send(queue, text, delay_seconds=delay_seconds)

    sender = FailsOnThird()
    records = [account(f"A-{i}") for i in range(50)]
    with pytest.raises(PartialSendError) as caught:
        RecordProducer(sender, catalog("contoso")).send_records(records, max_records_per_message=10)
    report = caught.value.report
    assert [(m.first, m.count) for m in report.messages] == [(0, 10), (10, 10)]
    assert "sent 20 of 50 records" in str(caught.value)
    assert "records 20 to 49 were NOT sent" in str(caught.value)


def test_packing_respects_both_the_byte_and_the_record_limit():
    tiny = [json.dumps({"table": "task", "key": {"k": i}}) for i in range(2500)]
    assert [count for _, count, _ in pack_texts(tiny)] == [1000, 1000, 500]  # the record limit binds
    texts = [json.dumps(contact(f"c{i}@x", parent="A")) for i in range(2500)]
    packed = pack_texts(texts)
    assert sum(count for _, count, _ in packed) == 2500
    assert len(packed) >= 8  # the byte limit binds
    for first, count, text in packed:
        assert len(text.encode()) <= MAX_MESSAGE_JSON_BYTES
        assert count <= 1000
        assert json.loads(text)["records"][0] == json.loads(texts[first])
    big = ["x" * 30_000, "y" * 30_000]
    assert [count for _, count, _ in pack_texts([json.dumps(b) for b in big])] == [1, 1]


def test_producers_may_not_forge_retry_state():
    with pytest.raises(InvalidRecords, match="delivery"):
        send_records(MemorySender(), catalog("contoso"), [account("A") | {"delivery": {"ref": "x"}}])
