"""The naive baseline: one PATCH upsert per record, one after another, with `requests`, as most samples do.

    PATCH {org}/api/data/v9.2/accounts(accountnumber='A-1')   {"name": ...}

(learn.microsoft.com/power-apps/developer/data-platform/use-upsert-insert-update-record, Web API form). It keeps
one Session (connection reuse, which is already kinder than a new connection per call), waits `Retry-After` on a
429 as the service protection docs require, and does nothing else: no batching, no parallelism.
The token is acquired once beforehand, through the app's own S2S chain (managed identity -> Key Vault
certificate -> CertificateCredential), so only the writes are timed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from shared.config.settings import Settings
from shared.identity.credentials import DataverseCredentials
from shared.identity.keyvault import KeyVaultCertificateStore

IDENTITY_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")  # read by ManagedIdentityCredential from the env
MAX_THROTTLE_RETRIES = 10


@dataclass
class BaselineResult:
    records: int = 0
    seconds: float = 0.0
    failures: int = 0
    throttled: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def acquire_token(settings: Settings, app_settings: Mapping[str, str], environment: str) -> str:
    """A bearer token for `environment`, the way the app gets one (docs/client.md#identity)."""
    config = settings.environments[environment]
    with _identity_environment(app_settings):
        credentials = DataverseCredentials.from_settings(settings, KeyVaultCertificateStore.from_settings(settings))
        return credentials.get_token(config.tenant_id, config.url)


def upsert_one_by_one(
    org_url: str, token: str, records: Sequence[Mapping[str, Any]], *, ca_bundle: str
) -> BaselineResult:
    """PATCH every record by its alternate key, sequentially; returns how long that took."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
    }
    result = BaselineResult()
    started = time.perf_counter()
    with requests.Session() as session:
        for record in records:
            key = ",".join(f"{column}='{value}'" for column, value in record["key"].items())
            url = f"{org_url}/api/data/v9.2/accounts({key})"
            status = _patch(session, url, record["data"], headers, ca_bundle, result)
            result.statuses[str(status)] = result.statuses.get(str(status), 0) + 1
            result.records += 1
            if status >= 300:
                result.failures += 1
    result.seconds = time.perf_counter() - started
    return result


def _patch(
    session: requests.Session,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    ca_bundle: str,
    result: BaselineResult,
) -> int:
    for _ in range(MAX_THROTTLE_RETRIES):
        # verify= on every request: requests ignores Session.verify when REQUESTS_CA_BUNDLE is set.
        response = session.patch(url, json=body, headers=headers, verify=ca_bundle, timeout=60)
        if response.status_code != 429:
            return response.status_code
        result.throttled += 1
        time.sleep(float(response.headers.get("Retry-After", "1")))
    return 429


@contextmanager
def _identity_environment(app_settings: Mapping[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in IDENTITY_VARIABLES}
    os.environ.update({name: app_settings[name] for name in IDENTITY_VARIABLES})
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
