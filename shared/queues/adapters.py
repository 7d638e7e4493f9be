"""The queue-side ports of the sync core (shared/sync/ports.py) over azure-storage-queue.

`QueueAdapters.from_settings(settings)` builds them all on one QueueServiceClient, for the composition root:
`sender` (QueueSender), `dead_letters` (DeadLetterSink + operator store), `bulk_source` (BulkMessageSource on
BULK_QUEUE) and `depth` (QueueDepth).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient

from shared.config.settings import Settings
from shared.queues.clients import app_queue, incoming, queue_service
from shared.queues.deadletter_store import DeadLetterStore
from shared.queues.names import BULK_QUEUE
from shared.sync.ports import IncomingMessage

# Put Message: visibilitytimeout "cannot be larger than 7 days" and "should be set to a value smaller than the
# time-to-live value" (7 days by default), so a delay keeps a minute's margin below it.
# https://learn.microsoft.com/rest/api/storageservices/put-message
MAX_VISIBILITY_TIMEOUT_SECONDS = 7 * 24 * 3600


class QueueClients:
    """One QueueClient per queue name, created on first use and shared (clients are thread-safe)."""

    def __init__(self, service: QueueServiceClient) -> None:
        self.service = service
        self._clients: dict[str, QueueClient] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> QueueClient:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = app_queue(self.service, name)
            return client


class QueueSenderAdapter:
    """QueueSender: base64-encoded messages to any of the app's queues, optionally invisible for a while."""

    def __init__(self, clients: QueueClients) -> None:
        self._clients = clients

    def send(self, queue: str, text: str, *, delay_seconds: int = 0) -> str:
        delay = min(max(0, delay_seconds), MAX_VISIBILITY_TIMEOUT_SECONDS - 60)
        sent = self._clients(queue).send_message(text, visibility_timeout=delay or None)
        return str(sent.id)


class QueueBulkSource:
    """BulkMessageSource on one queue (the bulk queue); messages decoded as the host would."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    def receive(self, max_messages: int, *, visibility_timeout_seconds: int) -> list[IncomingMessage]:
        count = max(1, min(32, max_messages))
        pages = self._client.receive_messages(
            messages_per_page=count, max_messages=count, visibility_timeout=visibility_timeout_seconds
        )
        return [incoming(message, self._client.queue_name) for message in pages]

    def delete(self, message: IncomingMessage) -> None:
        self._client.delete_message(message.id, message.receipt)

    def release(self, message: IncomingMessage, *, delay_seconds: int) -> None:
        self._client.update_message(message.id, message.receipt, visibility_timeout=max(0, delay_seconds))


class QueueDepthReader:
    def __init__(self, clients: QueueClients) -> None:
        self._clients = clients

    def approximate_count(self, queue: str) -> int:
        try:
            return int(self._clients(queue).get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0


@dataclass(frozen=True)
class QueueAdapters:
    service: QueueServiceClient
    clients: QueueClients
    sender: QueueSenderAdapter
    dead_letters: DeadLetterStore
    bulk_source: QueueBulkSource
    depth: QueueDepthReader

    @classmethod
    def from_settings(cls, settings: Settings, **client_options: Any) -> QueueAdapters:
        return cls.on(queue_service(settings.queue_connection, **client_options))

    @classmethod
    def on(cls, service: QueueServiceClient) -> QueueAdapters:
        clients = QueueClients(service)
        return cls(
            service=service,
            clients=clients,
            sender=QueueSenderAdapter(clients),
            dead_letters=DeadLetterStore(clients),
            bulk_source=QueueBulkSource(clients(BULK_QUEUE)),
            depth=QueueDepthReader(clients),
        )
