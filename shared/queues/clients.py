"""Queue clients for the app's queues: every message is the base64 of its UTF-8 text (the contract's encoding).

Locally the connection is a connection string (Azurite); in Azure it is the queue service URI and the Function
App's user-assigned managed identity, as the host reads `SYNC_STORAGE__queueServiceUri` / `__clientId`.
Messages are *sent* through `TextBase64EncodePolicy` (the Python SDK sends plain text by default). Messages are
*received* without a decode policy and decoded here one by one: with `TextBase64DecodePolicy` a single message
that is not base64 fails the whole receive call, and so would block the queue. The queue trigger gets the same
treatment (host.json messageEncoding `none`, decoded in `triggers.incoming_message`).
https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient, TextBase64EncodePolicy

from shared.config.settings import QueueConnection
from shared.sync.ports import IncomingMessage


def queue_service(connection: QueueConnection, **client_options: Any) -> QueueServiceClient:
    """The queue service of SYNC_STORAGE: connection string, or URI + managed identity."""
    if connection.connection_string:
        return QueueServiceClient.from_connection_string(connection.connection_string, **client_options)
    if not connection.queue_service_uri:
        raise ValueError("the queue connection has neither a connection string nor a queue service URI")
    from azure.identity import ManagedIdentityCredential  # noqa: PLC0415 - only needed in Azure

    credential = ManagedIdentityCredential(client_id=connection.client_id)
    return QueueServiceClient(connection.queue_service_uri, credential=credential, **client_options)


def app_queue(service: QueueServiceClient, name: str) -> QueueClient:
    """A client for one of the app's queues: sends base64 (as the host), receives raw text (see module doc)."""
    return service.get_queue_client(name, message_encode_policy=TextBase64EncodePolicy())


def ensure_queues(service: QueueServiceClient, names: Iterable[str]) -> None:
    """Create the queues if missing (infra/ creates them in Azure; locally Azurite starts empty)."""
    for name in names:
        with contextlib.suppress(ResourceExistsError):
            service.create_queue(name)


_BASE64_WHITESPACE = str.maketrans("", "", " \t\r\n")


def decode_content(content: str | bytes | None) -> tuple[bytes, str | None]:
    """The body of a received message and, when it is not valid base64, the reason (body = raw text then)."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else (content or "")
    try:
        # Whitespace is ignored, as .NET's Convert.FromBase64String does (e.g. `base64` without -w0 wraps lines).
        return base64.b64decode(text.translate(_BASE64_WHITESPACE), validate=True), None
    except (binascii.Error, ValueError):
        return text.encode("utf-8"), (
            "the message is not base64: producers must base64-encode the UTF-8 JSON "
            "(e.g. azure-storage-queue TextBase64EncodePolicy; docs/message-contract.md#encoding)"
        )


def incoming(message: QueueMessage, queue: str) -> IncomingMessage:
    body, error = decode_content(message.content)
    inserted: datetime | None = message.inserted_on
    return IncomingMessage(
        id=str(message.id),
        body=body,
        dequeue_count=int(message.dequeue_count or 0),
        queue=queue,
        inserted_on=inserted,
        receipt=message.pop_receipt,
        encoding_error=error,
    )
