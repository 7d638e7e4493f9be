"""Queue adapter tests run against the session's Azurite; every test gets queues of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from azure.storage.queue import QueueClient, QueueServiceClient

from emulators.azurite import Azurite
from shared.queues.adapters import QueueClients, QueueSenderAdapter


@pytest.fixture(scope="module")
def service(azurite: Azurite) -> QueueServiceClient:
    return QueueServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def new_queue(service: QueueServiceClient) -> Iterator[Callable[[str], str]]:
    """Creates uniquely named queues (3-63 lowercase characters) and deletes them after the test."""
    made: list[str] = []

    def make(prefix: str = "q") -> str:
        name = f"t-{prefix}-{uuid.uuid4().hex[:12]}"
        service.create_queue(name)
        made.append(name)
        return name

    yield make
    for name in made:
        service.delete_queue(name)


@pytest.fixture
def clients(service: QueueServiceClient) -> QueueClients:
    return QueueClients(service)


@pytest.fixture
def sender(clients: QueueClients) -> QueueSenderAdapter:
    return QueueSenderAdapter(clients)


def raw_client(service: QueueServiceClient, name: str) -> QueueClient:
    """No encode/decode policy: what is really stored."""
    return service.get_queue_client(name)
