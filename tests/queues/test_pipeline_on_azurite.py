"""The handlers wired to the real queue adapters, as the composition root will wire them, on Azurite.

A tiny stand-in for the host's queue trigger drives them (receive, call, delete on success, leave on RetryLater,
copy to -poison at maxDequeueCount), with an in-memory writer playing Dataverse: valid records land, invalid ones
become dead-letter entries, an outage goes through poison and re-queue, and a replay brings the rest home.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueServiceClient

from emulators.azurite import Azurite
from shared.config.settings import QueueConnection
from shared.queues.adapters import QueueAdapters
from shared.queues.clients import ensure_queues, incoming, queue_service
from shared.queues.deadletter_store import EntryFilter
from shared.queues.host_options import read_queue_host_options
from shared.queues.names import ALL_QUEUES, RECORDS_POISON_QUEUE, RECORDS_QUEUE
from shared.queues.producer import RecordProducer
from shared.sync import PoisonTriage, RecordsHandler, RetryLater, SyncEngine, SyncPolicy
from shared.sync.catalog import Catalog
from shared.sync.ports import Outcome, RecordWrite, WriteResult
from tests.sync.fakes import CONTOSO, FakeClock, account, contact

pytestmark = pytest.mark.azurite


@dataclass
class Dataverse:
    """Rows by (table, key); `down` answers 503 to everything; unknown parents are DEPENDENCY."""

    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    down: bool = False

    def write(self, environment: str, writes: Sequence[RecordWrite], *, deadline: float) -> list[WriteResult]:
        results = []
        for w in writes:
            if self.down:
                results.append(WriteResult(w.ref, Outcome.TRANSIENT, 503, None, "Service Unavailable"))
                continue
            missing = [lk for lk in w.lookups.values() if (lk.table, str(next(iter(lk.key.values())))) not in self.rows]
            if missing:
                results.append(WriteResult(w.ref, Outcome.DEPENDENCY, 400, "0x80040217", "parent does not exist"))
                continue
            self.rows[(w.table, str(next(iter(w.key.values()))))] = dict(w.data)
            results.append(WriteResult(w.ref, Outcome.WRITTEN, 204, request_id=f"req-{w.ref}"))
        return results


@dataclass
class Host:
    """The queue trigger's documented behaviour, reduced to what these tests need."""

    service: QueueServiceClient
    max_dequeue_count: int

    def deliver(self, queue: str, handle: Any) -> int:
        client = self.service.get_queue_client(queue)
        handled = 0
        for message in client.receive_messages(max_messages=32, visibility_timeout=60):
            try:
                handle(incoming(message, queue))
            except RetryLater:
                if (message.dequeue_count or 0) >= self.max_dequeue_count:
                    self.service.get_queue_client(RECORDS_POISON_QUEUE).send_message(message.content)
                    client.delete_message(message)
                else:
                    client.update_message(message, visibility_timeout=0)
            else:
                client.delete_message(message)
            handled += 1
        return handled


@pytest.fixture(scope="module")
def storage() -> Iterator[QueueServiceClient]:
    """An Azurite of its own: the wired adapters use the app's fixed queue names, which end-to-end tests
    elsewhere use on the session Azurite."""
    with Azurite() as own:
        service = QueueServiceClient.from_connection_string(own.connection_string)
        ensure_queues(service, ALL_QUEUES)
        yield service


def test_the_wired_handlers_land_records_dead_letter_the_rest_and_survive_an_outage(storage):
    adapters = QueueAdapters.on(storage)
    catalog = Catalog({"contoso": CONTOSO})
    options = read_queue_host_options()
    policy = SyncPolicy(max_dequeue_count=options.max_dequeue_count, transient_retry_delay_seconds=0,
                        dependency_retry_delay_seconds=0, poison_requeue_delay_seconds=0)  # fmt: skip
    clock = FakeClock()
    dataverse = Dataverse()
    engine = SyncEngine(writer=dataverse, dead_letters=adapters.dead_letters, sender=adapters.sender, clock=clock,
                        catalog=catalog, policy=policy)  # fmt: skip
    records = RecordsHandler(engine)
    poison = PoisonTriage(dead_letters=adapters.dead_letters, sender=adapters.sender, clock=clock, policy=policy)
    host = Host(storage, options.max_dequeue_count)

    producer = RecordProducer(adapters.sender, catalog)
    producer.send_records([contact("c@x", parent="A-1"), account("A-1"), account("A-2")])
    adapters.sender.send(RECORDS_QUEUE, json.dumps({"table": "lead", "key": {"leadid": "x"}}))
    assert host.deliver(RECORDS_QUEUE, records.handle) == 2
    assert set(dataverse.rows) == {("account", "A-1"), ("account", "A-2"), ("contact", "c@x")}
    [entry] = adapters.dead_letters.select(EntryFilter())
    assert entry.entry is not None
    assert entry.entry.reason.code == "unknown_table"

    dataverse.down = True
    producer.send_records([account("A-3")])
    for _ in range(options.max_dequeue_count):
        host.deliver(RECORDS_QUEUE, records.handle)
    assert adapters.depth.approximate_count(RECORDS_QUEUE) == 0
    assert adapters.depth.approximate_count(RECORDS_POISON_QUEUE) == 1  # the handler's envelope, with its cause
    for _ in range(policy.poison_requeue_limit + 1):
        host.deliver(RECORDS_POISON_QUEUE, poison.handle)
        for _ in range(options.max_dequeue_count):
            host.deliver(RECORDS_QUEUE, records.handle)
    exhausted = adapters.dead_letters.select(EntryFilter(kind="retries_exhausted"))
    assert [e.entry.record for e in exhausted if e.entry] == [account("A-3") | {"environment": "contoso"}]

    dataverse.down = False
    report = adapters.dead_letters.replay(EntryFilter(kind="retries_exhausted"), adapters.sender)
    assert len(report.replayed) == 1
    host.deliver(RECORDS_QUEUE, records.handle)
    assert ("account", "A-3") in dataverse.rows
    assert [e.entry.reason.code for e in adapters.dead_letters.select(EntryFilter()) if e.entry] == ["unknown_table"]


def test_in_azure_the_queue_service_uses_the_managed_identity():
    service = queue_service(QueueConnection(queue_service_uri="https://acct.queue.core.windows.net",
                                            client_id="3a11a9ed-0000-4000-8000-0000000b0001"))  # fmt: skip
    assert service.url.startswith("https://acct.queue.core.windows.net")
    assert isinstance(service.credential, ManagedIdentityCredential)
