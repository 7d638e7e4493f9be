"""Reading the Dataverse certificate from Key Vault with the Function App's managed identity.

`ManagedIdentityCredential(client_id=AZURE_CLIENT_ID)` (user-assigned identity; system-assigned when unset). In
Azure the platform sets IDENTITY_ENDPOINT/IDENTITY_HEADER (App Service style); locally the emulator's values are set
the same way, so the real credential runs unchanged. The identity needs "Key Vault Secrets User" (get secret).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import KeyVaultSecret, SecretClient

from shared.config.settings import Settings
from shared.identity.certificate import ClientCertificate, load_certificate_secret

log = logging.getLogger(__name__)


class CertificateUnavailable(Exception):
    """Key Vault could not be read (network, permissions, missing secret). Safe to log: no secret values."""


class CertificateStore(Protocol):
    """Where the certificate comes from (Key Vault in the app; a fake in unit tests)."""

    def latest_version(self) -> str | None: ...

    def load(self) -> ClientCertificate: ...


@dataclass
class KeyVaultCertificateStore:
    vault_url: str
    certificate_name: str
    password_secret_name: str | None = None
    credential: TokenCredential | None = None
    managed_identity_client_id: str | None = None
    verify_challenge_resource: bool = True
    ca_bundle: str | None = None
    client_options: dict[str, Any] = field(default_factory=dict)  # azure-core options, e.g. retry_total
    _client: SecretClient | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **client_options: Any) -> KeyVaultCertificateStore:
        return cls(
            vault_url=settings.keyvault_url,
            certificate_name=settings.certificate_name,
            password_secret_name=settings.certificate_password_secret,
            managed_identity_client_id=settings.managed_identity_client_id,
            verify_challenge_resource=settings.keyvault_verify_challenge_resource,
            ca_bundle=settings.ca_bundle,
            client_options=client_options,
        )

    @property
    def client(self) -> SecretClient:
        if self._client is None:
            credential = self.credential or ManagedIdentityCredential(
                client_id=self.managed_identity_client_id, **self.client_options
            )
            options = dict(self.client_options)
            if self.ca_bundle:
                options["connection_verify"] = self.ca_bundle
            self._client = SecretClient(
                self.vault_url, credential, verify_challenge_resource=self.verify_challenge_resource, **options
            )
        return self._client

    def latest_version(self) -> str | None:
        """The current version of the certificate's secret (one GET; its value is discarded unparsed)."""
        return self._get_secret(self.certificate_name).properties.version

    def load(self) -> ClientCertificate:
        secret = self._get_secret(self.certificate_name)
        password = None
        if self.password_secret_name:
            password = self._get_secret(self.password_secret_name, role="password secret").value
        return load_certificate_secret(
            secret.value or "",
            secret.properties.content_type,
            name=self.certificate_name,
            version=secret.properties.version,
            password=password,
            password_secret_name=self.password_secret_name,
        )

    def _get_secret(self, name: str, role: str = "certificate") -> KeyVaultSecret:
        try:
            return self.client.get_secret(name)
        except ResourceNotFoundError:
            raise CertificateUnavailable(f"Key Vault {self.vault_url}: {role} secret {name!r} not found") from None
        except AzureError as exc:
            reason = getattr(exc, "message", None) or type(exc).__name__
            first_line = str(reason).splitlines()[0][:300] if str(reason) else type(exc).__name__
            raise CertificateUnavailable(
                f"Key Vault {self.vault_url}: cannot read {role} secret {name!r}: {type(exc).__name__}: {first_line}"
            ) from None
