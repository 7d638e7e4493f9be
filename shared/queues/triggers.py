"""From the Functions queue trigger's message to the sync core's IncomingMessage.

host.json sets `messageEncoding` to `none`, so the host hands over the message text as stored, and the base64
that producers (and the app itself) put on the queue is undone here, message by message, as the bulk source and
the dead-letter store do (`clients.decode_content`). With `base64` in host.json the host would decode instead, and
move a message that is not base64 to the poison queue without running; there it cannot be decoded either, and a
poison queue has no poison queue of its own, so it would stay invisible, never triaged, until it expired
(extension 5.x: the MessageDecodingFailed handler poisons it; QueueListenerFactory.CreatePoisonQueueReference
gives `-poison` queues none). Decoded here, it becomes a `queue_encoding` dead letter like any invalid message.

The host passes `azure.functions.QueueMessage` with `id`, `dequeue_count` (1 on the first delivery) and
`insertion_time` filled from trigger metadata (azure-functions `azure/functions/queue.py`). Duck-typed here, so
nothing imports azure.functions but function_app.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.queues.clients import decode_content
from shared.sync.ports import IncomingMessage


class TriggerMessage(Protocol):
    @property
    def id(self) -> str | None: ...

    @property
    def dequeue_count(self) -> int | None: ...

    @property
    def insertion_time(self) -> datetime | None: ...

    def get_body(self) -> bytes: ...


def incoming_message(message: TriggerMessage, queue: str, host_encoding: str = "none") -> IncomingMessage:
    """`queue` is the trigger's queue name (RECORDS_QUEUE or RECORDS_POISON_QUEUE). With `host_encoding` "none"
    (host.json messageEncoding) the body is base64-decoded here, or kept as received with `encoding_error` saying
    why it is not base64; with "base64" the host has decoded it already."""
    body, error = decode_content(message.get_body()) if host_encoding == "none" else (message.get_body(), None)
    return IncomingMessage(
        id=message.id or "unknown",
        body=body,
        dequeue_count=message.dequeue_count or 1,
        queue=queue,
        inserted_on=message.insertion_time,
        encoding_error=error,
    )
