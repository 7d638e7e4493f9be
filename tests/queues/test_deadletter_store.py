"""The dead-letter store against Azurite: never-expiring entries, selection, replay, purge."""

from __future__ import annotations

import base64
import json

import pytest
from azure.core.exceptions import ServiceRequestError

from shared.queues.adapters import QueueClients
from shared.queues.deadletter_store import DeadLetterStore, EntryFilter
from shared.sync.contract import MAX_MESSAGE_JSON_BYTES, Delivery
from shared.sync.deadletter import Reason, Source, new_entry
from shared.sync.problems import ReasonKind
from tests.queues.conftest import raw_client
from tests.sync.fakes import FakeClock, account

pytestmark = pytest.mark.azurite


def entry_json(number: str, *, code: str = "dataverse_rejected", table: str = "account", record: bool = True) -> str:
    kind = ReasonKind.REJECTED if record else ReasonKind.INVALID_MESSAGE
    return new_entry(
        reason=Reason(kind, code, "why"),
        source=Source("dvsync-records", f"msg-{number}", 1),
        now=FakeClock().now(),
        record=account(number) if record else None,
        raw_message=None if record else "{broken",
        environment="contoso",
        table=table,
        ref=f"msg-{number}:0",
        delivery=Delivery(ref=f"msg-{number}:0", transient_attempts=5),
    ).serialize()


@pytest.fixture
def store(clients: QueueClients, new_queue) -> DeadLetterStore:
    return DeadLetterStore(clients, queue=new_queue("dl"))


def test_entries_are_stored_without_expiry(store: DeadLetterStore, service):
    store.put(entry_json("A-1"))
    [message] = raw_client(service, store.queue).peek_messages()
    assert message.expires_on is not None
    assert message.expires_on.year == 9999  # "-1: the message does not expire"


def test_select_filters_and_leaves_every_entry_visible_afterwards(store: DeadLetterStore):
    store.put(entry_json("A-1"))
    store.put(entry_json("A-2", code="parent_not_found"))
    store.put(entry_json("C-1", table="contact"))
    store.put("this is not an entry")
    chosen = store.select(EntryFilter.parse(["table=account", "code=dataverse_rejected"]))
    assert [s.entry.record["key"] for s in chosen if s.entry and s.entry.record] == [{"accountnumber": "A-1"}]
    assert len(store.select(EntryFilter())) == 4
    assert len(store.peek()) == 4  # nothing stays hidden after a scan


def test_find_by_entry_id_or_message_id(store: DeadLetterStore):
    text = entry_json("A-1")
    message_id = store.put(text)
    entry_id = json.loads(text)["id"]
    found = store.find(entry_id)
    assert found is not None
    assert found.message_id == message_id
    assert store.find(message_id) is not None
    assert store.find("nope") is None


def test_replay_sends_records_back_packed_and_deletes_their_entries(store: DeadLetterStore, new_queue, sender, service):
    target = new_queue("replay")
    for i in range(5):
        store.put(entry_json(f"A-{i}"))
    store.put(entry_json("raw", record=False))
    report = store.replay(EntryFilter(), sender, queue=target)
    assert len(report.replayed) == 5
    assert report.messages_sent == 1
    assert [reason for _, reason in report.skipped] == [
        "holds a raw message, not a record: fix the producer and send it again"
    ]
    [message] = raw_client(service, target).peek_messages()
    replayed = json.loads(base64.b64decode(message.content))
    assert replayed["schema"] == "dataverse-sync/v1"
    assert next(r["delivery"] for r in replayed["records"]) == {"ref": "msg-A-0:0", "replays": 1}
    assert [r["environment"] for r in replayed["records"]] == ["contoso"] * 5
    remaining = store.select(EntryFilter())
    assert len(remaining) == 1
    assert remaining[0].entry is not None
    assert remaining[0].entry.raw_message == "{broken"


def test_replay_packs_large_records_into_several_messages_that_each_fit(
    store: DeadLetterStore, new_queue, sender, service
):
    target = new_queue("replay")
    for i in range(5):  # about 20 kB of JSON each: two fit one message, three do not
        entry = json.loads(entry_json(f"A-{i}"))
        entry["record"]["data"]["description"] = "x" * 20_000
        store.put(json.dumps(entry))
    report = store.replay(EntryFilter(), sender, queue=target)
    assert len(report.replayed) == 5
    assert report.messages_sent == 3
    messages = raw_client(service, target).peek_messages(max_messages=32)
    texts = [base64.b64decode(m.content) for m in messages]
    assert all(len(text) <= MAX_MESSAGE_JSON_BYTES for text in texts)
    keys = [r["key"]["accountnumber"] for text in texts for r in json.loads(text)["records"]]
    assert keys == [f"A-{i}" for i in range(5)]
    assert store.peek() == []


def test_a_failed_replay_says_how_far_it_got_and_keeps_the_rest(store: DeadLetterStore, sender):
    store.put(entry_json("A-1"))

    class Down:
        def send(self, queue: str, text: str, *, delay_seconds: int = 0) -> str:
            raise ServiceRequestError("connection refused")

    report = store.replay(EntryFilter(), Down())
    assert report.replayed == []
    assert report.error is not None
    assert "connection refused" in report.error
    assert len(store.peek()) == 1


def test_purge_with_a_filter_deletes_only_matches_and_without_one_everything(store: DeadLetterStore):
    store.put(entry_json("A-1"))
    store.put(entry_json("C-1", table="contact"))
    store.put(entry_json("C-2", table="contact"))
    assert store.purge(EntryFilter(table="contact")) == 2
    assert [s.entry.table for s in store.peek() if s.entry] == ["account"]
    store.put(entry_json("A-2"))
    assert store.purge(EntryFilter()) == 2
    assert store.peek() == []


@pytest.mark.parametrize("bad", ["table", "colour=red", "table="])
def test_bad_filters_are_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match="filter"):
        EntryFilter.parse([bad])
