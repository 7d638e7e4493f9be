"""The local cloud for the client's integration tests (real HTTPS, real azure-identity/azure-keyvault-secrets,
the Dataverse emulator), and the guard that no secret the cloud knows ever reaches a log record.

Package-scoped: started once for tests/client/integration and stopped when the package is done.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets._shared import http_challenge_cache

from emulators.cloud import LocalCloud, sample_values
from emulators.dataverse import LatencyModel, Org
from shared.config.settings import Settings, TableConfig
from shared.dataverse import DataverseEnvironments, RetryOptions
from shared.identity import DataverseCredentials, KeyVaultCertificateStore

GRAM = 24
SECRETISH_RUN = re.compile(rf"[A-Za-z0-9+/=_.\-]{{{GRAM},}}")  # base64, base64url, JWT and password alphabets
MANAGED_IDENTITY_VARIABLES = ("IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT")


class SecretRegistry:
    """Every secret the tests know of: Key Vault values, private keys, passwords, issued access tokens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: set[str] = set()

    def add(self, value: str | bytes | None) -> None:
        if not value:
            return
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        with self._lock:
            self.values.add(text)

    def leaks(self, haystack: str) -> list[str]:
        """Secrets found in `haystack`: whole short secrets, or any 24-character piece of a long one (a log
        excerpt of a token or key would carry one). Returns the first characters of each, never the secret."""
        with self._lock:
            values = list(self.values)
        found: list[str] = []
        grams: dict[str, str] = {}
        for value in values:
            if len(value) < GRAM:
                if value in haystack:
                    found.append(value[:4])
                continue
            for text in (value, re.sub(r"-----[A-Z ]+-----|\s", "", value)):
                for i in range(len(text) - GRAM + 1):
                    grams.setdefault(text[i : i + GRAM], value[:4])
        for run in SECRETISH_RUN.findall(haystack):
            for i in range(len(run) - GRAM + 1):
                if run[i : i + GRAM] in grams:
                    found.append(grams[run[i : i + GRAM]])
                    break
        return found


@pytest.fixture(scope="package")
def secrets() -> SecretRegistry:
    return SecretRegistry()


@pytest.fixture(scope="package")
def cloud(tmp_path_factory: pytest.TempPathFactory, secrets: SecretRegistry) -> Iterator[LocalCloud]:
    with LocalCloud(Path(tmp_path_factory.mktemp("client-cloud")), with_azurite=False) as running:
        secrets.add(running.app_certificate.pem())
        original_issue = running.authority.issue

        def recording_issue(**kwargs: Any) -> Any:
            issued = original_issue(**kwargs)
            secrets.add(issued.access_token)
            return issued

        running.authority.issue = recording_issue  # type: ignore[method-assign]
        yield running


@pytest.fixture(scope="package")
def settings(cloud: LocalCloud) -> Settings:
    """The app's settings for this cloud, with every demo table configured in both environments (the sample
    configures account and contact; dvs_orderline has a composite key, task no bulk actions)."""
    base = Settings.from_environ({**sample_values(), **cloud.app_settings()})
    tables = {
        **next(iter(base.environments.values())).tables,
        "dvs_orderline": TableConfig(alternate_keys=[["dvs_ordernumber", "dvs_linenumber"]]),
        "task": TableConfig(),
    }
    environments = {name: env.model_copy(update={"tables": tables}) for name, env in base.environments.items()}
    return dataclasses.replace(base, environments=environments)


FAST_RETRY = RetryOptions(backoff_base_seconds=0.05, backoff_cap_seconds=0.5)


@pytest.fixture(scope="package")
def environments(cloud: LocalCloud, settings: Settings) -> Iterator[DataverseEnvironments]:
    """What the app builds once per process. Faster back-off than production so fault tests stay short; the
    emulator answers without simulated latency (tests that measure set their own)."""
    for name in cloud.org_urls:
        cloud.dataverse.org(name).set_latency(LatencyModel.zero())
    dataverse = DataverseEnvironments(settings, build_credentials(cloud, settings), retry=FAST_RETRY)
    yield dataverse
    dataverse.close()


@pytest.fixture
def orgs(cloud: LocalCloud) -> dict[str, Org]:
    """The emulated orgs, emptied (rows, counters, faults, throttling windows) before each test."""
    handles = {name: cloud.dataverse.org(name) for name in cloud.org_urls}
    for org in handles.values():
        org.reset()
        org.set_latency(LatencyModel.zero())
    return handles


@pytest.fixture(autouse=True)
def fresh_challenge_cache() -> None:
    """Key Vault's challenge cache is process-wide (local-emulation.md §5)."""
    http_challenge_cache.clear()


@pytest.fixture(autouse=True)
def no_secret_in_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, secrets: SecretRegistry
) -> Iterator[None]:
    """Capture every log record at DEBUG (azure-core and urllib3 included) and fail if one carries a secret."""
    caplog.set_level(logging.DEBUG)
    yield
    for secret_value in _key_vault_values(request):
        secrets.add(secret_value)
    records = [r for when in ("setup", "call") for r in caplog.get_records(when)]  # per phase; teardown is now
    handler = logging.StreamHandler()
    texts = [handler.format(r) + "\n" + repr(r.__dict__) for r in records]
    haystack = "\n".join(texts)
    leaked = secrets.leaks(haystack)
    assert not leaked, f"{len(leaked)} secret(s) found in captured logs (starting with {sorted(set(leaked))})"


def _key_vault_values(request: pytest.FixtureRequest) -> list[str]:
    if "cloud" not in request.fixturenames:
        return []
    cloud: LocalCloud = request.getfixturevalue("cloud")
    store = cloud.keyvault.secrets
    return [v.value for current in store.current_versions() for v in store.versions(current.name)]


@pytest.fixture(autouse=True)
def identity_environment(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """What App Service / Functions puts in the environment for the app's managed identity. MSAL (used by
    ManagedIdentityCredential) reads it when a token is requested, so it is set for each test and then restored."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", cloud.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", cloud.identity_header)
    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def build_credentials(cloud: LocalCloud, settings: Settings, **overrides: Any) -> DataverseCredentials:
    """The production path: KeyVaultCertificateStore.from_settings (ManagedIdentityCredential) and
    DataverseCredentials.from_settings (needs the `identity_environment` fixture, which is autouse here)."""
    options = {k: overrides.pop(k) for k in list(overrides) if k in {"clock", "now"}}
    effective = dataclasses.replace(settings, **overrides) if overrides else settings
    store = KeyVaultCertificateStore.from_settings(effective, retry_total=0)
    return DataverseCredentials.from_settings(effective, store, credential_options={"retry_total": 0}, **options)
