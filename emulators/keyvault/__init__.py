"""Emulated Azure Key Vault (secrets data plane, certificates stored as secrets, RBAC) over HTTPS."""

from emulators.keyvault.endpoints import KEYVAULT_RESOURCE, KeyVaultEmulator, KeyVaultError
from emulators.keyvault.rbac import ROLE_DATA_ACTIONS, ROLE_IDS, RoleAssignments
from emulators.keyvault.store import SecretStore, SecretVersion

__all__ = [
    "KEYVAULT_RESOURCE",
    "ROLE_DATA_ACTIONS",
    "ROLE_IDS",
    "KeyVaultEmulator",
    "KeyVaultError",
    "RoleAssignments",
    "SecretStore",
    "SecretVersion",
]
