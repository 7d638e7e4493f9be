"""Queue adapters against Azurite: encoding as the host expects, delays, bulk source, depth, host options."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.functions.queue import QueueMessage as FunctionsQueueMessage

from shared.queues.adapters import QueueBulkSource, QueueClients, QueueDepthReader, QueueSenderAdapter
from shared.queues.clients import decode_content, incoming
from shared.queues.host_options import read_queue_host_options, timespan_seconds
from shared.queues.triggers import incoming_message
from shared.sync import BulkDrain, SyncEngine, SyncPolicy
from tests.queues.conftest import raw_client
from tests.sync.fakes import FakeClock, FakeWriter, MemoryDeadLetters, MemorySender, account, catalog, envelope

pytestmark = pytest.mark.azurite


def test_messages_are_stored_base64_encoded_as_host_json_says(service, new_queue, sender):
    queue = new_queue("enc")
    sender.send(queue, '{"table":"account","data":{"name":"Ünïcødé"}}')
    [stored] = raw_client(service, queue).peek_messages()
    assert base64.b64decode(stored.content).decode() == '{"table":"account","data":{"name":"Ünïcødé"}}'


def test_a_received_message_keeps_id_dequeue_count_insertion_time_and_receipt(service, new_queue, sender):
    queue = new_queue("recv")
    sent_id = sender.send(queue, '{"a":1}')
    [message] = raw_client(service, queue).receive_messages(max_messages=1, visibility_timeout=30)
    got = incoming(message, queue)
    assert (got.id, got.body, got.dequeue_count, got.queue) == (sent_id, b'{"a":1}', 1, queue)
    assert got.receipt
    assert got.encoding_error is None
    assert got.inserted_on is not None
    assert abs((datetime.now(UTC) - got.inserted_on).total_seconds()) < 120


def test_a_plain_text_message_is_flagged_not_fatal(service, new_queue):
    queue = new_queue("plain")
    raw_client(service, queue).send_message('{"table": "account"}')  # a producer that forgot the encoding
    [message] = raw_client(service, queue).receive_messages(max_messages=1)
    got = incoming(message, queue)
    assert got.body == b'{"table": "account"}'
    assert got.encoding_error is not None
    assert "base64" in got.encoding_error


def test_decode_content_accepts_only_strict_base64():
    assert decode_content(base64.b64encode(b"\x00\xff").decode()) == (b"\x00\xff", None)
    assert decode_content("abc$")[1] is not None


def test_a_delayed_message_stays_invisible(service, new_queue, sender):
    queue = new_queue("delay")
    sender.send(queue, "later", delay_seconds=60)
    sender.send(queue, "now")
    peeked = raw_client(service, queue).peek_messages(max_messages=32)
    assert [base64.b64decode(m.content) for m in peeked] == [b"now"]


def test_the_bulk_source_receives_deletes_and_releases(service, new_queue, clients: QueueClients, sender):
    queue = new_queue("bulk")
    for i in range(3):
        sender.send(queue, json.dumps({"n": i}))
    source = QueueBulkSource(clients(queue))
    received = source.receive(2, visibility_timeout_seconds=60)
    assert [json.loads(m.body)["n"] for m in received] == [0, 1]
    source.delete(received[0])
    source.release(received[1], delay_seconds=0)
    again = source.receive(32, visibility_timeout_seconds=60)
    assert sorted(json.loads(m.body)["n"] for m in again) == [1, 2]
    assert {m.dequeue_count for m in again if json.loads(m.body)["n"] == 1} == {2}


def test_the_bulk_drain_settles_real_queue_messages(service, new_queue, clients: QueueClients, sender):
    queue = new_queue("drain")
    for i in range(40):
        sender.send(queue, json.dumps(envelope(account(f"A-{i}"), account(f"B-{i}"))))
    sender.send(queue, "not json at all")
    writer = FakeWriter()
    dead_letters = MemoryDeadLetters()
    engine = SyncEngine(
        writer=writer,
        dead_letters=dead_letters,
        sender=MemorySender(),
        clock=FakeClock(),
        catalog=catalog("contoso"),
        policy=SyncPolicy(),
    )
    drain = BulkDrain(engine, source=QueueBulkSource(clients(queue)))
    report = drain.run()
    assert report.tally.written == 80
    assert dead_letters.codes() == ["invalid_json"]
    assert report.deleted == 41
    assert len(writer.calls) == 1
    assert QueueDepthReader(clients).approximate_count(queue) == 0


def test_depth_of_a_missing_queue_is_zero(clients: QueueClients, new_queue, sender: QueueSenderAdapter):
    depth = QueueDepthReader(clients)
    assert depth.approximate_count("t-never-created-queue") == 0
    queue = new_queue("depth")
    sender.send(queue, "x")
    sender.send(queue, "y")
    assert depth.approximate_count(queue) == 2


def test_host_options_come_from_the_projects_host_json():
    options = read_queue_host_options()
    assert (options.max_dequeue_count, options.visibility_timeout_seconds, options.message_encoding) == (
        5,
        30,
        "none",  # the app undoes the base64 itself (shared/queues/triggers.py)
    )
    assert read_queue_host_options(Path("/nonexistent/host.json")).max_dequeue_count == 5
    assert timespan_seconds("1.02:03:04") == 93784


def test_a_functions_trigger_message_becomes_an_incoming_message():
    inserted = datetime(2025, 3, 1, tzinfo=UTC)
    stored = base64.b64encode(b'{"a":1}')  # messageEncoding none: the host passes the stored text
    message = FunctionsQueueMessage(id="abc", body=stored, dequeue_count=3, insertion_time=inserted)
    got = incoming_message(message, "dvsync-records")
    assert (got.id, got.body, got.dequeue_count, got.queue, got.inserted_on) == (
        "abc",
        b'{"a":1}',
        3,
        "dvsync-records",
        inserted,
    )
