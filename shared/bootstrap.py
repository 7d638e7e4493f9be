"""The composition root: builds settings, adapters and handlers once per process and hands them out.

function_app.py asks for `handlers()` on every invocation; the first call builds everything (lazily, so that
indexing the functions needs no settings), later calls reuse it. The Python worker keeps the process across
invocations, and clients must be reused: a new credential repeats discovery and token requests, a new Session
opens new connections ("Manage connections in Azure Functions",
https://learn.microsoft.com/azure/azure-functions/manage-connections). Tests call `build(...)` with fakes or with
the local cloud's settings, exactly as production does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.config.settings import Settings
from shared.dataverse.environments import DataverseEnvironments
from shared.queues.adapters import QueueAdapters
from shared.queues.clients import ensure_queues
from shared.queues.host_options import DEFAULT_HOST_JSON, read_queue_host_options
from shared.queues.names import ALL_QUEUES
from shared.sync.bulk_drain import BulkDrain
from shared.sync.catalog import Catalog
from shared.sync.clock import SystemClock
from shared.sync.engine import SyncEngine
from shared.sync.health_check import HealthCheck
from shared.sync.poison_triage import PoisonTriage
from shared.sync.policy import SyncPolicy
from shared.sync.ports import Clock, DataverseWriter, EnvironmentProbe
from shared.sync.records_handler import RecordsHandler

log = logging.getLogger("dataverse_sync.bootstrap")


@dataclass(frozen=True)
class Handlers:
    """Everything the functions need, built once."""

    settings: Settings
    queues: QueueAdapters
    message_encoding: str  # host.json messageEncoding: "none" (the app decodes base64 itself) or "base64"
    records: RecordsHandler
    poison: PoisonTriage
    bulk: BulkDrain
    health: HealthCheck


def build(
    settings: Settings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    writer: DataverseWriter | None = None,
    probe: EnvironmentProbe | None = None,
    queues: QueueAdapters | None = None,
    clock: Clock | None = None,
    host_json: Path = DEFAULT_HOST_JSON,
) -> Handlers:
    """Wire the handlers. Production passes nothing; tests replace any port."""
    settings = settings or Settings.from_environ(environ)
    if writer is None or probe is None:
        dataverse = DataverseEnvironments.from_settings(settings)
        writer = writer or dataverse
        probe = probe or dataverse
    if queues is None:
        queues = QueueAdapters.from_settings(settings)
        # infra/ creates the queues in Azure; Azurite starts empty. Creating an existing queue is a no-op.
        ensure_queues(queues.service, ALL_QUEUES)
    clock = clock or SystemClock()
    host = read_queue_host_options(host_json, environ)  # with the host's AzureFunctionsJobHost__ overrides
    policy = SyncPolicy.from_settings(
        settings,
        max_dequeue_count=host.max_dequeue_count,
        transient_retry_delay_seconds=host.visibility_timeout_seconds,
    )
    dead_letters, sender = queues.dead_letters, queues.sender
    engine = SyncEngine(
        writer=writer,
        dead_letters=dead_letters,
        sender=sender,
        clock=clock,
        catalog=Catalog(settings.environments),
        policy=policy,
    )
    return Handlers(
        settings=settings,
        queues=queues,
        message_encoding=host.message_encoding,
        records=RecordsHandler(engine),
        poison=PoisonTriage(dead_letters=dead_letters, sender=sender, clock=clock, policy=policy),
        bulk=BulkDrain(engine, source=queues.bulk_source),
        health=HealthCheck(
            probe=probe, depth=queues.depth, clock=clock, policy=policy, environments=list(settings.environments)
        ),
    )


_built: Handlers | None = None
_lock = threading.Lock()


def handlers() -> Handlers:
    """The process-wide handlers, built on first use (thread-safe: the worker runs functions on a thread pool)."""
    global _built  # noqa: PLW0603 - the one module-level cache of the composition root
    if _built is None:
        with _lock:
            if _built is None:
                _built = build()
                log.info("dataverse-sync ready: environments %s", sorted(_built.settings.environments))
    return _built


def reset() -> None:
    """Forget the built handlers (tests; the local runner between runs)."""
    global _built  # noqa: PLW0603
    with _lock:
        _built = None


def build_environment_probe(settings: Settings) -> EnvironmentProbe:
    """For the operator CLI's `health` command: the same probe the health-check timer uses."""
    return DataverseEnvironments.from_settings(settings)
