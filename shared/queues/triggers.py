"""From the Functions queue trigger's message to the sync core's IncomingMessage.

The host has already undone host.json `messageEncoding` (base64) and passes `azure.functions.QueueMessage`
with `id`, `dequeue_count` (1 on the first delivery) and `insertion_time` filled from trigger metadata
(azure-functions `azure/functions/queue.py`). Duck-typed here, so nothing imports azure.functions but
function_app.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.sync.ports import IncomingMessage


class TriggerMessage(Protocol):
    @property
    def id(self) -> str | None: ...

    @property
    def dequeue_count(self) -> int | None: ...

    @property
    def insertion_time(self) -> datetime | None: ...

    def get_body(self) -> bytes: ...


def incoming_message(message: TriggerMessage, queue: str) -> IncomingMessage:
    """`queue` is the trigger's queue name (RECORDS_QUEUE or RECORDS_POISON_QUEUE)."""
    return IncomingMessage(
        id=message.id or "unknown",
        body=message.get_body(),
        dequeue_count=message.dequeue_count or 1,
        queue=queue,
        inserted_on=message.insertion_time,
    )
