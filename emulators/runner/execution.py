"""What every listener shares: clients, worker pool, leases, counters; and running one invocation end to end.

Invocation log lines follow the host's ("Executing 'Functions.<name>' (Reason='...', Id=<invocation id>)" and
"Executed 'Functions.<name>' (Succeeded|Failed, Id=..., Duration=<n>ms)"), with the message id and dequeue count
appended for queue triggers. Output bindings are flushed after the function returns and before the trigger
completes; a flush failure fails the invocation, as in the host.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from emulators.runner.bindings import FunctionSpec
from emulators.runner.host_config import QueuesOptions
from emulators.runner.invocation import AsyncRunner, InvocationContext, Outcome, invoke
from emulators.runner.leases import LeaseKeeper
from emulators.runner.queue_io import QueueClients, encode_body, send_creating
from emulators.runner.stats import StatsBook
from emulators.runner.worker_pool import WorkerPool

log = logging.getLogger("emulators.runner")


class QueueWatcher:
    """Wakes a queue's listener when this host adds a message to that queue (the host's SharedQueueWatcher),
    so output bindings and poison moves are picked up without waiting for the polling back-off."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.Lock()

    def register(self, queue_name: str, wake: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.setdefault(queue_name, []).append(wake)

    def notify(self, queue_name: str) -> None:
        with self._lock:
            wakers = list(self._listeners.get(queue_name, ()))
        for wake in wakers:
            wake()


@dataclass
class HostServices:
    options: QueuesOptions
    function_timeout: timedelta | None
    script_root: str
    clients: QueueClients
    leases: LeaseKeeper
    pool: WorkerPool
    stats: StatsBook
    watcher: QueueWatcher = field(default_factory=QueueWatcher)
    async_runner: AsyncRunner = field(default_factory=AsyncRunner)


def execute(
    services: HostServices,
    spec: FunctionSpec,
    trigger_value: Any,
    *,
    reason: str,
    details: str = "",
    retry_count: int = 0,
    max_retry_count: int = 0,
    may_commit: Callable[[], bool] = lambda: True,
) -> Outcome:
    """Invoke, flush outputs on success (unless `may_commit()` says the trigger was given up), log, count."""
    invocation_id = str(uuid.uuid4())
    context = InvocationContext(invocation_id, spec.name, services.script_root, retry_count, max_retry_count)
    log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)%s", spec.name, reason, invocation_id, details)
    started = time.perf_counter()
    outcome = invoke(spec, trigger_value, context, services.async_runner)
    if outcome.succeeded and may_commit():
        outcome = _flush_outputs(services, spec, outcome)
    duration_ms = (time.perf_counter() - started) * 1000
    services.stats.add(spec.name, invocations=1, successes=int(outcome.succeeded), failures=int(not outcome.succeeded))
    status = "Succeeded" if outcome.succeeded else "Failed"
    line = "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)%s"
    if outcome.succeeded:
        log.info(line, spec.name, status, invocation_id, duration_ms, details)
    else:
        error = outcome.error
        log.error(line, spec.name, status, invocation_id, duration_ms, details,
                  exc_info=(type(error), error, error.__traceback__) if error else None)  # fmt: skip
    timeout = services.function_timeout
    if timeout is not None and duration_ms > timeout.total_seconds() * 1000:
        log.warning("Function '%s' ran %dms, longer than functionTimeout %s: the real host would fail it with "
                    "FunctionTimeoutException and restart the worker", spec.name, duration_ms, timeout)  # fmt: skip
    return outcome


def _flush_outputs(services: HostServices, spec: FunctionSpec, outcome: Outcome) -> Outcome:
    try:
        for output in spec.outputs:
            messages = outcome.outputs.get(output.parameter, [])
            if not messages:
                continue
            queue = services.clients.queue(output.connection_string, output.queue_name)
            for message in messages:
                send_creating(queue, encode_body(message, services.options.message_encoding))
            services.watcher.notify(output.queue_name)
    except Exception as exc:  # a failed flush fails the invocation
        return Outcome(succeeded=False, error=exc)
    return outcome
