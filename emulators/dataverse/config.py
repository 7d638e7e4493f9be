"""Settings of the Dataverse emulator: limits, latency model, paging and change-tracking parameters."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from emulators.dataverse.limits import LatencyModel, ServiceProtectionLimits

API_VERSIONS = ("v9.0", "v9.1", "v9.2")
SERVICE_VERSION = "v9.2"  # the version the emulator writes in URLs it returns (PAD: current version v9.2)


@dataclass(frozen=True)
class EmulatorConfig:
    limits: ServiceProtectionLimits = field(default_factory=ServiceProtectionLimits)
    latency: LatencyModel = field(default_factory=LatencyModel)
    # x-ms-dop-hint: Dataverse's recommended degree of parallelism (PAD/send-parallel-requests.md). The value an
    # environment reports is not documented; 8 matches this project's DATAVERSE_MAX_PARALLELISM default.
    dop_hint: int = 8
    max_page_size: int = 5000  # default and maximum page size (PAD/webapi/query/page-results.md)
    batch_max_operations: int = 1000  # PAD/webapi/execute-batch-operations-using-web-api.md
    # Organization.ExpireChangeTrackingInDays: 7 days in the current docs (was 90, then 30).
    change_tracking_retention_seconds: float = 7 * 24 * 3600
    fault_seed: int | None = None

    @classmethod
    def fast(cls, **overrides: Any) -> EmulatorConfig:
        """No simulated latency: for functional tests."""
        return replace(cls(latency=LatencyModel.zero()), **overrides)
