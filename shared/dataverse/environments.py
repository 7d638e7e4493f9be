"""All configured Dataverse environments behind the sync core's ports: `DataverseWriter` and `EnvironmentProbe`.

One `DataverseClient` per environment, built on first use and kept for the life of the worker process (pooled
connections, cached metadata, adaptive concurrency state); tokens from the per-tenant credentials
(shared/identity), scope `{org}/.default`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from shared.config.settings import Settings
from shared.dataverse.client import DataverseClient, WhoAmI
from shared.identity import DataverseCredentials, KeyVaultCertificateStore
from shared.sync.ports import CheckResult, Outcome, ProbeReport, RecordWrite, WriteResult

PROBE_TIMEOUT_SECONDS = 30.0


class CertificateInfo(Protocol):
    @property
    def not_after(self) -> datetime: ...

    @property
    def thumbprint(self) -> str: ...


class CredentialSource(Protocol):
    """What the environments need from the identity side (shared.identity.DataverseCredentials)."""

    def get_token(self, tenant_id: str, resource: str, *, force_refresh: bool = False) -> str: ...

    def certificate_status(self) -> CertificateInfo: ...


class DataverseEnvironments:
    def __init__(self, settings: Settings, credentials: CredentialSource, **client_overrides: Any) -> None:
        self._settings = settings
        self._credentials = credentials
        self._overrides = client_overrides
        self._clients: dict[str, DataverseClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **client_overrides: Any) -> DataverseEnvironments:
        """The production wiring: the managed identity reads the certificate from Key Vault, one
        CertificateCredential per tenant (shared/identity). Build once per process."""
        store = KeyVaultCertificateStore.from_settings(settings)
        return cls(settings, DataverseCredentials.from_settings(settings, store), **client_overrides)

    def client(self, environment: str) -> DataverseClient:
        with self._lock:
            if environment not in self._clients:
                config = self._settings.environments[environment]

                def token(fresh: bool, tenant: str = config.tenant_id, url: str = config.url) -> str:
                    return self._credentials.get_token(tenant, url, force_refresh=fresh)

                self._clients[environment] = DataverseClient.for_environment(
                    environment, self._settings, token, **self._overrides
                )
            return self._clients[environment]

    # --- DataverseWriter ---------------------------------------------------------------------------------------

    def write(self, environment: str, writes: Sequence[RecordWrite], *, deadline: float) -> list[WriteResult]:
        if environment not in self._settings.environments:
            message = f"environment {environment!r} is not configured (DATAVERSE_ENVIRONMENTS)"
            return [WriteResult(w.ref, Outcome.PERMANENT, None, None, message) for w in writes]
        return self.client(environment).write(writes, deadline=deadline)

    def whoami(self, environment: str, *, deadline: float | None = None) -> WhoAmI:
        """`GET WhoAmI` in `environment` (raises DataverseRequestFailed / EnvironmentUnavailable)."""
        return self.client(environment).whoami(deadline=deadline)

    # --- EnvironmentProbe --------------------------------------------------------------------------------------

    def probe(self, environment: str) -> ProbeReport:
        """Certificate (Key Vault), token (Entra ID) and WhoAmI (Dataverse), each timed; never raises."""
        certificate, not_after, thumbprint = self._check_certificate()
        config = self._settings.environments.get(environment)
        if config is None:
            missing = CheckResult(False, f"environment {environment!r} is not configured")
            return ProbeReport(not_after, thumbprint, certificate, missing, missing)

        def acquire_token() -> None:
            self._credentials.get_token(config.tenant_id, config.url)

        token = _timed(acquire_token)
        if not token.ok:
            return ProbeReport(not_after, thumbprint, certificate, token, CheckResult(False, "skipped: no token"))
        organization: list[str] = []

        def who_am_i() -> str:
            answer = self.client(environment).whoami(deadline=time.monotonic() + PROBE_TIMEOUT_SECONDS)
            organization.append(answer.organization_id)
            return answer.user_id

        return ProbeReport(
            not_after, thumbprint, certificate, token, _timed(who_am_i), organization[0] if organization else None
        )

    def _check_certificate(self) -> tuple[CheckResult, datetime | None, str | None]:
        started = time.monotonic()
        try:
            status = self._credentials.certificate_status()
        except Exception as exc:  # reported, not raised: the message names Key Vault/the setting, no secrets
            return CheckResult(False, _reason(exc), time.monotonic() - started), None, None
        return CheckResult(True, None, time.monotonic() - started), status.not_after, status.thumbprint

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _timed(check: Callable[[], str | None]) -> CheckResult:
    """Run one check; any failure (DataverseRequestFailed, EnvironmentUnavailable, TokenUnavailable...) is reported."""
    started = time.monotonic()
    try:
        detail = check()
    except Exception as exc:
        return CheckResult(False, _reason(exc), time.monotonic() - started)
    return CheckResult(True, detail, time.monotonic() - started)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]
