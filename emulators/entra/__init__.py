"""Emulated Entra ID: the directory model, the OpenID Connect token endpoints and the managed identity endpoint."""

from emulators.entra.certificates import ClientCertificate, create_certificate, pooled_rsa_key
from emulators.entra.directory import AppRegistration, Directory, ManagedIdentity, ServicePrincipal, Tenant
from emulators.entra.endpoints import EntraEmulator
from emulators.entra.errors import EntraError
from emulators.entra.managed_identity import ManagedIdentityEndpoint

__all__ = [
    "AppRegistration",
    "ClientCertificate",
    "Directory",
    "EntraEmulator",
    "EntraError",
    "ManagedIdentity",
    "ManagedIdentityEndpoint",
    "ServicePrincipal",
    "Tenant",
    "create_certificate",
    "pooled_rsa_key",
]
