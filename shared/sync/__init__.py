"""The sync core: message contract and validation, planning (group, coalesce, order), outcome decisions.

Pure: imports no Azure SDK and no HTTP library. It talks to the outside through the ports in `ports.py`.

Handlers (each a class built once with its ports, called once per trigger invocation):
- `RecordsHandler.handle(IncomingMessage)` for the RECORDS_QUEUE trigger (raises `RetryLater` for a host retry);
- `PoisonTriage.handle(IncomingMessage)` for the RECORDS_POISON_QUEUE trigger;
- `BulkDrain.run()` for the bulk-drain timer; `HealthCheck.run()` for the health timer.
The records handler and the bulk drain share one `SyncEngine` (writer, dead letters, sender, clock, catalog,
policy): `RecordsHandler(engine)`, `BulkDrain(engine, source=...)`.
"""

from shared.sync.bulk_drain import BulkDrain, DrainReport
from shared.sync.catalog import Catalog
from shared.sync.clock import SystemClock
from shared.sync.engine import SyncEngine, Tally
from shared.sync.health_check import HealthCheck, HealthReport
from shared.sync.poison_triage import PoisonTriage, TriageReport
from shared.sync.policy import SyncPolicy
from shared.sync.records_handler import MessageReport, RecordsHandler, RetryLater

__all__ = [
    "BulkDrain",
    "Catalog",
    "DrainReport",
    "HealthCheck",
    "HealthReport",
    "MessageReport",
    "PoisonTriage",
    "RecordsHandler",
    "RetryLater",
    "SyncEngine",
    "SyncPolicy",
    "SystemClock",
    "Tally",
    "TriageReport",
]
