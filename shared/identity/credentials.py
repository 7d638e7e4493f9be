"""One `CertificateCredential` per tenant from the Key Vault certificate, and Dataverse tokens per (tenant, org).

- Tokens come from each credential's own MSAL cache (scope `{org}/.default`): no token request per record or per
  message; a new credential instance is built only on rotation or when a resource rejects a token (401).
- Rotation: every `refresh_seconds` the secret's current version is checked; a new version rebuilds every tenant's
  credential. When Entra rejects the certificate (e.g. AADSTS700027 after the old one was removed from the app
  registration), Key Vault is re-read at once and the request retried once with the new certificate.
- Expiry: a structured warning when the certificate expires within `warning_days` (and an error once expired).
- `disable_instance_discovery` is set whenever the authority is not a public/sovereign Entra host: instance
  discovery asks login.microsoftonline.com about the authority, which fails offline and for private authorities.
Thread-safe: the Dataverse writer asks for tokens from a thread pool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.identity import AzureAuthorityHosts, CertificateCredential

from shared.config.settings import Settings
from shared.identity.certificate import CertificateError, ClientCertificate
from shared.identity.keyvault import CertificateStore, CertificateUnavailable

log = logging.getLogger(__name__)

PUBLIC_AUTHORITY_HOSTS = frozenset(
    {AzureAuthorityHosts.AZURE_PUBLIC_CLOUD, AzureAuthorityHosts.AZURE_GOVERNMENT, AzureAuthorityHosts.AZURE_CHINA}
)
# Entra answers that mean "this certificate is not (or no longer) accepted for the app": a fresh one may help.
# learn.microsoft.com/entra/identity-platform/reference-error-codes (700027 invalid signature / unknown key,
# 700024 assertion outside its validity, 7000222 expired credentials).
CERTIFICATE_REJECTED_CODES = ("AADSTS700027", "AADSTS700024", "AADSTS7000222")


class TokenUnavailable(Exception):
    """No token for a tenant/org: the message says why (Entra's code and text, or Key Vault), never secrets."""


@dataclass(frozen=True)
class CertificateStatus:
    name: str
    version: str | None
    thumbprint: str
    not_after: datetime
    days_left: float
    expiring: bool


def needs_instance_discovery_disabled(authority_host: str) -> bool:
    host = urlparse(authority_host if "://" in authority_host else f"https://{authority_host}").hostname or ""
    return host.lower() not in PUBLIC_AUTHORITY_HOSTS


def scope_for(resource: str) -> str:
    return resource.rstrip("/") + "/.default"


class DataverseCredentials:
    def __init__(
        self,
        store: CertificateStore,
        *,
        client_id: str,
        authority_host: str,
        send_certificate_chain: bool = False,
        ca_bundle: str | None = None,
        refresh_seconds: float = 900,
        warning_days: int = 30,
        credential_options: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._client_id = client_id
        self._authority = authority_host
        self._send_chain = send_certificate_chain
        self._ca_bundle = ca_bundle
        self._refresh_seconds = refresh_seconds
        self._warning_days = warning_days
        self._credential_options = credential_options or {}
        self._clock = clock
        self._now = now
        self._lock = threading.RLock()
        self._certificate: ClientCertificate | None = None
        self._checked_at = -float("inf")
        self._credentials: dict[str, CertificateCredential] = {}

    @classmethod
    def from_settings(cls, settings: Settings, store: CertificateStore, **options: Any) -> DataverseCredentials:
        return cls(
            store,
            client_id=settings.dataverse_client_id,
            authority_host=settings.authority_host,
            send_certificate_chain=settings.send_certificate_chain,
            ca_bundle=settings.ca_bundle,
            refresh_seconds=settings.certificate_refresh_seconds,
            warning_days=settings.certificate_warning_days,
            **options,
        )

    # --- tokens ------------------------------------------------------------------------------------------------

    def get_token(self, tenant_id: str, resource: str, *, force_refresh: bool = False) -> str:
        """A bearer token for `resource` (e.g. the org URL) in `tenant_id`. `force_refresh` discards the cached
        token of that tenant (after a 401)."""
        credential = self._credential(tenant_id, rebuild=force_refresh)
        try:
            return credential.get_token(scope_for(resource)).token
        except ClientAuthenticationError as exc:
            if not _certificate_rejected(exc) or not self._reload_after_rejection():
                raise TokenUnavailable(_describe(exc, tenant_id)) from None
        except AzureError as exc:  # Entra unreachable, TLS...
            raise TokenUnavailable(_describe(exc, tenant_id)) from None
        try:  # once more with the certificate Key Vault holds now
            return self._credential(tenant_id).get_token(scope_for(resource)).token
        except AzureError as exc:
            raise TokenUnavailable(_describe(exc, tenant_id)) from None

    def _credential(self, tenant_id: str, *, rebuild: bool = False) -> CertificateCredential:
        with self._lock:
            certificate = self._current_certificate()
            if rebuild or tenant_id not in self._credentials:
                self._credentials[tenant_id] = self._build(tenant_id, certificate)
            return self._credentials[tenant_id]

    def _build(self, tenant_id: str, certificate: ClientCertificate) -> CertificateCredential:
        options = dict(self._credential_options)
        if self._ca_bundle:
            options["connection_verify"] = self._ca_bundle
        if needs_instance_discovery_disabled(self._authority):
            options["disable_instance_discovery"] = True
        try:
            return CertificateCredential(
                tenant_id,
                self._client_id,
                certificate_data=certificate.data,
                password=certificate.password,
                authority=self._authority,
                send_certificate_chain=self._send_chain,
                **options,
            )
        except ValueError:  # azure-identity's parse failure; load_certificate_secret checked the same already
            raise TokenUnavailable(
                f"certificate {certificate.name!r} (version {certificate.version}) is not usable by azure-identity"
            ) from None

    # --- certificate lifecycle ---------------------------------------------------------------------------------

    def _current_certificate(self) -> ClientCertificate:
        """The cached certificate, re-checking Key Vault's version at most every refresh_seconds. Caller locks."""
        if self._certificate is None:
            self._install(self._load())
        elif self._clock() - self._checked_at >= self._refresh_seconds:
            self._check_for_rotation()
        assert self._certificate is not None
        return self._certificate

    def _check_for_rotation(self) -> None:
        self._checked_at = self._clock()
        try:
            version = self._store.latest_version()
            if version != self._certificate_version():
                self._install(self._store.load())
        except (CertificateUnavailable, CertificateError) as exc:
            # Keep working with the certificate we have; the next check (or an Entra rejection) tries again.
            log.warning(
                "certificate rotation check failed; keeping version %s: %s",
                self._certificate_version(),
                exc,
                extra={"event": "certificate_check_failed"},
            )

    def _reload_after_rejection(self) -> bool:
        """Re-read Key Vault now; True when it holds a different certificate than the rejected one."""
        with self._lock:
            previous = self._certificate_version()
            try:
                self._install(self._load())
            except TokenUnavailable as exc:
                log.warning("reload after certificate rejection failed: %s", exc)
                return False
            return self._certificate_version() != previous

    def _load(self) -> ClientCertificate:
        try:
            return self._store.load()
        except (CertificateUnavailable, CertificateError) as exc:
            raise TokenUnavailable(str(exc)) from None
        finally:
            self._checked_at = self._clock()

    def _install(self, certificate: ClientCertificate) -> None:
        rotated = self._certificate is not None and certificate.version != self._certificate.version
        if rotated or self._certificate is None:
            self._credentials.clear()  # new certificate: every tenant gets a new credential
        if rotated:
            log.info(
                "certificate %s rotated to version %s (thumbprint %s)",
                certificate.name,
                certificate.version,
                certificate.thumbprint,
                extra={"event": "certificate_rotated", "version": certificate.version},
            )
        self._certificate = certificate
        self._warn_if_expiring(certificate)

    def _certificate_version(self) -> str | None:
        return self._certificate.version if self._certificate else None

    def _warn_if_expiring(self, certificate: ClientCertificate) -> None:
        status = self._status_of(certificate)
        if not status.expiring:
            return
        fields = {
            "event": "certificate_expiring",
            "certificate": certificate.name,
            "version": certificate.version,
            "thumbprint": certificate.thumbprint,
            "not_after": certificate.not_after.isoformat(),
            "days_left": round(status.days_left, 1),
        }
        if status.days_left <= 0:
            log.error("certificate %s EXPIRED on %s", certificate.name, fields["not_after"], extra=fields)
        else:
            log.warning(
                "certificate %s expires in %.1f days (%s); upload a new version to Key Vault and the app registration",
                certificate.name,
                status.days_left,
                fields["not_after"],
                extra=fields,
            )

    def _status_of(self, certificate: ClientCertificate) -> CertificateStatus:
        days_left = certificate.days_left(self._now())
        return CertificateStatus(
            certificate.name,
            certificate.version,
            certificate.thumbprint,
            certificate.not_after,
            days_left,
            expiring=days_left <= self._warning_days,
        )

    def certificate_status(self) -> CertificateStatus:
        """For the health check: the certificate in use (loading it if needed), with its expiry."""
        with self._lock:
            return self._status_of(self._current_certificate())


def _certificate_rejected(exc: ClientAuthenticationError) -> bool:
    text = str(exc.message or exc)
    return any(code in text for code in CERTIFICATE_REJECTED_CODES)


def _describe(exc: AzureError, tenant_id: str) -> str:
    text = str(exc.message or exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"no Dataverse token for tenant {tenant_id}: {first[:400]}"
