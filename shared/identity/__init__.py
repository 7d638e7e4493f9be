"""Identity: the managed identity reads the certificate from Key Vault; one CertificateCredential per tenant
gets Dataverse tokens (scope `{org}/.default`)."""

from shared.identity.certificate import CertificateError, ClientCertificate, load_certificate_secret
from shared.identity.credentials import CertificateStatus, DataverseCredentials, TokenUnavailable
from shared.identity.keyvault import CertificateStore, CertificateUnavailable, KeyVaultCertificateStore

__all__ = [
    "CertificateError",
    "CertificateStatus",
    "CertificateStore",
    "CertificateUnavailable",
    "ClientCertificate",
    "DataverseCredentials",
    "KeyVaultCertificateStore",
    "TokenUnavailable",
    "load_certificate_secret",
]
