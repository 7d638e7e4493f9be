"""Queue access for the runner: one client per connection and queue, message encoding, create-on-send.

Messages are received *raw* and decoded here, message by message: with a decode policy the Python SDK fails the
whole receive on one bad message, while the extension poisons just that message (QueueServiceClientProvider's
MessageDecodingFailed handler moves it, undecoded, to the poison queue).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import threading
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import LinearRetry, QueueClient, QueueMessage, QueueServiceClient


# The SDK's default retry waits 15 s and more between attempts; the listeners have their own back-off, and a
# stuck call would hold up shutdown. Two quick retries ride over a hiccup of the local Azurite.
def _retry_policy() -> LinearRetry:
    return LinearRetry(backoff=0.2, random_jitter_range=0.1, retry_total=2)  # type: ignore[arg-type]


_BASE64_WHITESPACE = str.maketrans("", "", " \t\r\n")  # .NET Convert.FromBase64String skips these


class UndecodableMessage(ValueError):
    """The message text is not valid base64 while the host expects base64."""


def decode_body(text: str, encoding: str) -> bytes:
    if encoding == "none":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text.translate(_BASE64_WHITESPACE), validate=True)
    except (binascii.Error, ValueError):
        raise UndecodableMessage("message content is not valid base64") from None


def encode_body(body: str | bytes, encoding: str) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if encoding == "none":
        # The service stores text: arbitrary bytes need base64 (the SDK's "none" policy would send them as text).
        return raw.decode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class QueueClients:
    """Thread-safe cache: one QueueServiceClient per connection string, one QueueClient per queue."""

    def __init__(self) -> None:
        self._services: dict[str, QueueServiceClient] = {}
        self._queues: dict[tuple[str, str], QueueClient] = {}
        self._lock = threading.Lock()

    def queue(self, conn_string: str, queue_name: str) -> QueueClient:
        with self._lock:
            key = (conn_string, queue_name)
            if key not in self._queues:
                if conn_string not in self._services:
                    self._services[conn_string] = QueueServiceClient.from_connection_string(
                        conn_string, retry_policy=_retry_policy(), connection_timeout=5, read_timeout=60
                    )
                self._queues[key] = self._services[conn_string].get_queue_client(queue_name)
            return self._queues[key]

    def close(self) -> None:
        with self._lock:
            for queue in self._queues.values():
                queue.close()
            for service in self._services.values():
                service.close()
            self._queues.clear()
            self._services.clear()


def receive_batch(queue: QueueClient, count: int, visibility_seconds: int) -> list[QueueMessage]:
    """One Get Messages call for up to `count` messages (the SDK's iterator would keep calling until empty)."""
    pages = queue.receive_messages(messages_per_page=count, visibility_timeout=visibility_seconds).by_page()
    try:
        return list(next(pages))
    except StopIteration:
        return []


def send_creating(queue: QueueClient, content: str) -> None:
    """Add a message, creating the queue if it does not exist (AddMessageAndCreateIfNotExistsAsync)."""
    try:
        queue.send_message(content)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()
        queue.send_message(content)


def approximate_count(queue: QueueClient) -> int:
    """Messages in the queue including invisible ones (0 for a queue that does not exist)."""
    try:
        return int(queue.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:
        return 0
