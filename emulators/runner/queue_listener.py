"""A queue trigger, driven as the Storage Queues extension 5.x drives it.

Follows QueueListener and QueueProcessor (Azure/azure-sdk-for-net, sdk/storage/
Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/) and
https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#poison-messages :
- polling: receive up to batchSize messages; when a receive finds none, wait with randomized exponential back-off
  from 100 ms up to maxPollingInterval, reset once messages arrive; after a batch, fetch the next as soon as no
  more than newBatchThreshold messages are still in flight; a message added by this host wakes the listener;
- a missing queue is not created by the trigger: the listener backs off and checks again;
- each message stays invisible while its function runs (see leases.py); success deletes it; failure makes it
  visible again after visibilityTimeout, or, once dequeue_count >= maxDequeueCount, copies its body to
  `<queue>-poison` (created if missing, new id, dequeue count 1) and deletes the original; a message whose
  dequeue_count already exceeds maxDequeueCount is poisoned without running; a message that is not valid base64
  (messageEncoding base64) is poisoned undecoded, without running;
- a queue whose name already ends in `-poison`, or is too long for the suffix, has no poison queue: a failed
  message is left invisible (it reappears when its 10-minute lease ends) to avoid a fast infinite loop.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage

from emulators.runner.backoff import RandomizedExponentialBackoff
from emulators.runner.bindings import FunctionSpec, QueueTriggerSpec
from emulators.runner.execution import HostServices, execute
from emulators.runner.host_config import MIN_POLLING_INTERVAL
from emulators.runner.invocation import Outcome, queue_trigger_value, raw_trigger_value
from emulators.runner.leases import MessageLease
from emulators.runner.queue_io import (
    UndecodableMessage,
    approximate_count,
    decode_body,
    encode_body,
    iso,
    receive_batch,
    send_creating,
)

log = logging.getLogger("emulators.runner")
POISON_SUFFIX = "-poison"
MAX_QUEUE_NAME = 63


def poison_queue_name(queue_name: str) -> str | None:
    """QueueListenerFactory.CreatePoisonQueueReference: none for a poison queue or a name too long."""
    if queue_name.endswith(POISON_SUFFIX) or len(queue_name) + len(POISON_SUFFIX) > MAX_QUEUE_NAME:
        return None
    return queue_name + POISON_SUFFIX


@dataclass
class _InFlight:
    message: QueueMessage
    body: bytes | None  # None: not valid base64
    lease: MessageLease
    future: Future[None] | None = None


class QueueListener:
    def __init__(self, spec: FunctionSpec, services: HostServices) -> None:
        assert isinstance(spec.trigger, QueueTriggerSpec)
        self.spec = spec
        self.trigger: QueueTriggerSpec = spec.trigger
        self._services = services
        self._options = services.options
        self.queue: QueueClient = services.clients.queue(self.trigger.connection_string, self.trigger.queue_name)
        poison_name = poison_queue_name(self.trigger.queue_name)
        self.poison_queue = services.clients.queue(self.trigger.connection_string, poison_name) if poison_name else None
        self._backoff = RandomizedExponentialBackoff(MIN_POLLING_INTERVAL, self._options.max_polling_interval)
        self._found_since_delay = False
        self._queue_exists: bool | None = None
        self._in_flight: dict[int, _InFlight] = {}
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._poll_loop, name=f"runner-queue-{spec.name}", daemon=True)
        services.watcher.register(self.trigger.queue_name, self._wake.set)

    # --- lifecycle (called by the host) ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop_polling(self) -> None:
        self._stopping.set()
        self._wake.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout=30)

    def in_flight(self) -> int:
        with self._changed:
            return len(self._in_flight)

    def backlog(self) -> int:
        """Messages in the trigger queue, invisible ones included."""
        return approximate_count(self.queue)

    def wait_until_drained(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._in_flight, timeout=max(0.0, timeout))

    def abandon_in_flight(self) -> int:
        """Shutdown after the grace period: give back every unfinished message now (visible again)."""
        with self._changed:
            entries = list(self._in_flight.values())
        released = 0
        for entry in entries:
            if entry.future is not None:
                entry.future.cancel()  # not started yet: never runs
            if self._services.leases.abandon(entry.lease):
                released += 1
                log.warning("Released message %s of '%s' unfinished at shutdown; it will be delivered again",
                            entry.message.id, self.trigger.queue_name)  # fmt: skip
        if released:
            self._services.stats.add(self.spec.name, abandoned=released)
        return released

    # --- polling ----------------------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._wait_for_capacity():
                return
            self._wake.clear()
            if self._poll_once():
                self._found_since_delay = True
                continue
            delay = self._backoff.next_delay(succeeded=self._found_since_delay)
            self._found_since_delay = False
            self._wake.wait(delay.total_seconds())

    def _wait_for_capacity(self) -> bool:
        """WaitForNewBatchThreshold: fetch again only when in-flight <= newBatchThreshold."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._stopping.is_set() or len(self._in_flight) <= self._options.new_batch_threshold
            )
        return not self._stopping.is_set()

    def _poll_once(self) -> bool:
        """One receive; True when messages were found and dispatched."""
        try:
            if not self._queue_exists:
                self._queue_exists = self._exists()
                if not self._queue_exists:
                    return False
            messages = receive_batch(self.queue, self._options.batch_size, self._services.leases.lease_seconds)
        except AzureError as exc:
            self._queue_exists = None
            self._report_error(exc)
            return False
        self._last_error = None
        for message in messages:
            self._dispatch(message)
        return bool(messages)

    def _exists(self) -> bool:
        try:
            self.queue.get_queue_properties()
        except ResourceNotFoundError:
            return False
        return True

    def _report_error(self, exc: AzureError) -> None:
        summary = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc.message}"
        if summary != self._last_error:  # once per distinct error, not once per poll
            log.warning("Polling queue '%s' failed (%s); backing off", self.trigger.queue_name, summary)
            self._last_error = summary

    def _dispatch(self, message: QueueMessage) -> None:
        lease = self._services.leases.hold(self.queue, message.id, message.pop_receipt or "")
        try:
            body: bytes | None = decode_body(message.content or "", self._options.message_encoding)
        except UndecodableMessage:
            body = None
        entry = _InFlight(message, body, lease)
        with self._changed:
            self._in_flight[id(entry)] = entry
        entry.future = self._services.pool.submit(self._process, entry)

    # --- processing (worker pool threads) ------------------------------------------------------------------

    def _process(self, entry: _InFlight) -> None:
        try:
            message = entry.message
            if entry.body is None:
                self._poison(entry, why="it is not valid base64 (messageEncoding is base64)")
            elif (message.dequeue_count or 0) > self._options.max_dequeue_count:
                self._poison(entry, why="its dequeue count already exceeds MaxDequeueCount")
            else:
                self._run_function(entry, entry.body)
        except Exception:
            log.exception("Runner error while processing message %s of '%s'; it will be delivered again",
                          entry.message.id, self.trigger.queue_name)  # fmt: skip
            self._services.leases.finish(entry.lease)
        finally:
            with self._changed:
                self._in_flight.pop(id(entry), None)
                self._changed.notify_all()

    def _trigger_value(self, message: QueueMessage, body: bytes) -> Any:
        if self.spec.raw_trigger_type is not None:
            return raw_trigger_value(body, self.spec.raw_trigger_type)
        return queue_trigger_value(
            body,
            message_id=message.id,
            dequeue_count=message.dequeue_count or 0,
            insertion_time=iso(message.inserted_on),
            expiration_time=iso(message.expires_on),
            next_visible_time=iso(message.next_visible_on),
            pop_receipt=message.pop_receipt or "",
        )

    def _run_function(self, entry: _InFlight, body: bytes) -> None:
        message = entry.message
        trigger_value = self._trigger_value(message, body)
        outcome = execute(
            self._services,
            self.spec,
            trigger_value,
            reason=f"New queue message detected on '{self.trigger.queue_name}'.",
            details=f" MessageId={message.id}, DequeueCount={message.dequeue_count}",
            may_commit=lambda: not entry.lease.abandoned,
        )
        self._complete(entry, outcome)

    def _complete(self, entry: _InFlight, outcome: Outcome) -> None:
        """QueueProcessor.CompleteProcessingMessageAsync."""
        message = entry.message
        receipt = self._services.leases.finish(entry.lease)
        if receipt is None:
            return  # released at shutdown; delivered again later
        if outcome.succeeded:
            self._delete(message.id, receipt)
        elif self.poison_queue is None:
            log.warning("Message %s failed on '%s', which has no poison queue: left invisible until its lease "
                        "ends", message.id, self.trigger.queue_name)  # fmt: skip
        elif (message.dequeue_count or 0) >= self._options.max_dequeue_count:
            self._move_to_poison(entry, receipt)
        else:
            self._release(message.id, receipt)

    def _poison(self, entry: _InFlight, *, why: str) -> None:
        receipt = self._services.leases.finish(entry.lease)
        if receipt is None:
            return
        if self.poison_queue is None:
            log.warning("Message %s on '%s' cannot be processed (%s) and there is no poison queue: left invisible",
                        entry.message.id, self.trigger.queue_name, why)  # fmt: skip
            return
        log.warning("Message %s on '%s' is poisoned without running: %s", entry.message.id,
                    self.trigger.queue_name, why)  # fmt: skip
        self._move_to_poison(entry, receipt)

    def _move_to_poison(self, entry: _InFlight, receipt: str) -> None:
        """QueueProcessor.CopyMessageToPoisonQueueAsync, then delete the original."""
        assert self.poison_queue is not None
        message = entry.message
        log.warning("Message has reached MaxDequeueCount of %d. Moving message to queue '%s'. "
                    "(MessageId=%s, DequeueCount=%s)", self._options.max_dequeue_count,
                    self.poison_queue.queue_name, message.id, message.dequeue_count)  # fmt: skip
        if entry.body is None:
            content = message.content or ""  # undecodable: copied as received, through a non-encoding client
        else:
            content = encode_body(entry.body, self._options.message_encoding)
        send_creating(self.poison_queue, content)
        self._delete(message.id, receipt)
        self._services.stats.add(self.spec.name, poisoned=1)
        self._services.watcher.notify(self.poison_queue.queue_name)

    def _delete(self, message_id: str, receipt: str) -> None:
        try:
            self.queue.delete_message(message_id, receipt)
        except (ResourceNotFoundError, HttpResponseError) as exc:
            # PopReceiptMismatch: someone else took the message over; NotFound: already gone (QueueProcessor).
            if not _is_benign(exc):
                raise
            log.debug("Message %s was not deleted: %s", message_id, getattr(exc, "error_code", exc))

    def _release(self, message_id: str, receipt: str) -> None:
        """QueueProcessor.ReleaseMessageAsync: visible again after visibilityTimeout (whole seconds, as .NET)."""
        try:
            self.queue.update_message(
                message_id, receipt, visibility_timeout=int(self._options.visibility_timeout.total_seconds())
            )
        except (ResourceNotFoundError, HttpResponseError) as exc:
            if not _is_benign(exc):
                raise


def _is_benign(exc: HttpResponseError) -> bool:
    return isinstance(exc, ResourceNotFoundError) or getattr(exc, "error_code", None) in (
        "PopReceiptMismatch",
        "MessageNotFound",
        "QueueNotFound",
        "QueueBeingDeleted",
        "QueueDisabled",
    )
