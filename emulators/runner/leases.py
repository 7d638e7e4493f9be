"""Keep received messages invisible while their invocation runs, as the host's QueueListener does.

The host receives messages with a 10-minute visibility timeout and, while the function runs, extends it every
half of that (UpdateQueueMessageVisibilityCommand with a LinearSpeedupStrategy: after a failed update it retries
at half the interval, but not more often than once a minute). One background thread here renews every held
message when due. Each renewal returns a new pop receipt, which deleting or releasing the message must use.
Source: Azure/azure-sdk-for-net, sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/
Queues/QueueListener.cs (CreateUpdateMessageVisibilityTimer).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueClient

log = logging.getLogger("emulators.runner")
HOST_MESSAGE_LEASE = timedelta(minutes=10)


class MessageLease:
    """A received message this runner holds invisible. All state changes happen under `lock`."""

    def __init__(self, queue: QueueClient, message_id: str, pop_receipt: str, renew_at: float) -> None:
        self.queue = queue
        self.message_id = message_id
        self.pop_receipt = pop_receipt
        self.renew_at = renew_at
        self.interval = 0.0
        self.held = True
        self.abandoned = False
        self.lock = threading.Lock()


class LeaseKeeper:
    def __init__(self, lease: timedelta = HOST_MESSAGE_LEASE) -> None:
        self.lease_seconds = max(1, int(lease.total_seconds()))
        self._normal_interval = self.lease_seconds / 2
        self._minimum_interval = min(60.0, self.lease_seconds / 4)
        self._leases: set[MessageLease] = set()
        self._changed = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="runner-lease-keeper", daemon=True)
        self._thread.start()

    def hold(self, queue: QueueClient, message_id: str, pop_receipt: str) -> MessageLease:
        lease = MessageLease(queue, message_id, pop_receipt, time.monotonic() + self._normal_interval)
        lease.interval = self._normal_interval
        with self._changed:
            self._leases.add(lease)
            self._changed.notify()
        return lease

    def finish(self, lease: MessageLease) -> str | None:
        """Stop renewing; the current pop receipt, or None if shutdown already released the message."""
        with lease.lock:
            self._forget(lease)
            if not lease.held:
                return None
            lease.held = False
            return lease.pop_receipt

    def abandon(self, lease: MessageLease) -> bool:
        """Shutdown: make the message visible again now, instead of when its lease runs out."""
        with lease.lock:
            self._forget(lease)
            if not lease.held:
                return False
            lease.held, lease.abandoned = False, True
            try:
                lease.queue.update_message(lease.message_id, lease.pop_receipt, visibility_timeout=0)
            except AzureError as exc:
                log.warning("Could not release message %s early (%s); it reappears when its lease ends",
                            lease.message_id, type(exc).__name__)  # fmt: skip
            return True

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join(timeout=5)

    def _forget(self, lease: MessageLease) -> None:
        with self._changed:
            self._leases.discard(lease)

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._stopping:
                    return
                due = [lease for lease in self._leases if lease.renew_at <= time.monotonic()]
                if not due:
                    earliest = min((lease.renew_at for lease in self._leases), default=None)
                    timeout = None if earliest is None else max(0.0, earliest - time.monotonic())
                    self._changed.wait(timeout)
                    continue
            for lease in due:
                self._renew(lease)

    def _renew(self, lease: MessageLease) -> None:
        with lease.lock:
            if not lease.held:
                return
            try:
                receipt = lease.queue.update_message(
                    lease.message_id, lease.pop_receipt, visibility_timeout=self.lease_seconds
                )
            except AzureError as exc:
                if isinstance(exc, ResourceNotFoundError) or getattr(exc, "error_code", None) == "PopReceiptMismatch":
                    # The message is gone or someone else took it over: stop renewing (as the host does).
                    self._forget(lease)
                    return
                lease.interval = max(lease.interval / 2, self._minimum_interval)
            else:
                lease.pop_receipt = receipt.pop_receipt or lease.pop_receipt
                lease.interval = self._normal_interval
            lease.renew_at = time.monotonic() + lease.interval
