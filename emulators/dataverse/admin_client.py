"""A small Python client of the Dataverse emulator's admin API (routes: docs/dataverse-emulator.md#admin-api).

For the demo, the benchmark and tests that drive an emulator running in another thread or process:

    admin = DataverseAdmin(cloud.dataverse_admin_url, ca_bundle=str(cloud.ca.ca_bundle))
    admin.add_fault("contoso", kind="429", count=2, limit_code="0x80072321", retry_after=1)
    admin.rows("contoso", "account")            # stored rows; lookups are ids, "<column>@table" names the target
    admin.counters("contoso")["requests_total"]

Every call goes over HTTPS to 127.0.0.1 and trusts only the local CA: `verify=` is passed per request, since
`requests` ignores `Session.verify` when REQUESTS_CA_BUNDLE is set (psf/requests#3829).
"""

from __future__ import annotations

from typing import Any

import requests


class AdminApiError(RuntimeError):
    """The admin API answered with an error status; the message carries its JSON error."""


class DataverseAdmin:
    def __init__(self, base_url: str, *, ca_bundle: str, timeout_seconds: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._verify = ca_bundle
        self._timeout = timeout_seconds
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._session.request(
            method, f"{self.base_url}{path}", json=body, verify=self._verify, timeout=self._timeout
        )
        if response.status_code >= 400:
            raise AdminApiError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    # --- reading ---------------------------------------------------------------------------------------------

    def rows(self, org: str, table: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.call("GET", f"/orgs/{org}/tables/{table}/rows")["value"]
        return rows

    def counts(self, org: str) -> dict[str, int]:
        counts: dict[str, int] = self.call("GET", f"/orgs/{org}/counts")
        return counts

    def counters(self, org: str) -> dict[str, Any]:
        """requests (by kind), requests_total, responses (by status), operations, records_written,
        throttled (by limit code), faults (by kind), execution_ms."""
        counters: dict[str, Any] = self.call("GET", f"/orgs/{org}/counters")
        return counters

    def limits(self, org: str) -> dict[str, Any]:
        limits: dict[str, Any] = self.call("GET", f"/orgs/{org}/limits")
        return limits

    def latency(self, org: str) -> dict[str, Any]:
        latency: dict[str, Any] = self.call("GET", f"/orgs/{org}/latency")
        return latency

    # --- changing --------------------------------------------------------------------------------------------

    def add_fault(self, org: str, **rule: Any) -> dict[str, Any]:
        """One FaultRule (kind, count | rate, method, path, delay_seconds, limit_code, retry_after)."""
        added: dict[str, Any] = self.call("POST", f"/orgs/{org}/faults", rule)
        return added

    def clear_faults(self, org: str) -> None:
        self.call("DELETE", f"/orgs/{org}/faults")

    def set_limits(self, org: str, **changes: Any) -> dict[str, Any]:
        limits: dict[str, Any] = self.call("PUT", f"/orgs/{org}/limits", changes)
        return limits

    def set_latency(self, org: str, **changes: Any) -> dict[str, Any]:
        latency: dict[str, Any] = self.call("PUT", f"/orgs/{org}/latency", changes)
        return latency

    def reset(
        self, org: str, *, data: bool = True, counters: bool = True, faults: bool = True, throttle: bool = True
    ) -> None:
        self.call(
            "POST", f"/orgs/{org}/reset", {"data": data, "counters": counters, "faults": faults, "throttle": throttle}
        )

    def reset_counters(self, org: str) -> None:
        self.call("DELETE", f"/orgs/{org}/counters")
