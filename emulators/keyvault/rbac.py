"""Azure RBAC for the Key Vault data plane: built-in roles, their data actions, and role assignments.

Role definitions (data actions) from https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security
and https://learn.microsoft.com/azure/key-vault/general/rbac-guide; role ids as in
../shared/reference/functions-infra.md §5.
An assignment is scoped to the whole vault or to one secret (RBAC allows both), and names the principal by object id
(the `oid` claim of its token).
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass

GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
READ_SECRET_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
SET_SECRET = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
UPDATE_SECRET = "Microsoft.KeyVault/vaults/secrets/update/action"

ROLE_DATA_ACTIONS: dict[str, tuple[str, ...]] = {
    "Key Vault Administrator": ("Microsoft.KeyVault/vaults/*",),
    "Key Vault Secrets Officer": ("Microsoft.KeyVault/vaults/secrets/*",),
    "Key Vault Secrets User": (GET_SECRET, READ_SECRET_METADATA),
    "Key Vault Certificate User": (
        "Microsoft.KeyVault/vaults/certificates/read",
        GET_SECRET,
        READ_SECRET_METADATA,
        "Microsoft.KeyVault/vaults/keys/read",
    ),
    "Key Vault Reader": ("Microsoft.KeyVault/vaults/*/read", READ_SECRET_METADATA),
}

ROLE_IDS = {
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Certificate User": "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
    "Key Vault Reader": "21090545-7ca7-4776-b22c-e363652d74d2",
}


@dataclass(frozen=True)
class RoleAssignment:
    principal_id: str
    role: str
    secret: str | None = None  # None: the whole vault

    def covers(self, action: str, secret: str | None) -> bool:
        in_scope = self.secret is None or (secret is not None and self.secret.lower() == secret.lower())
        return in_scope and any(fnmatch.fnmatchcase(action, pattern) for pattern in ROLE_DATA_ACTIONS[self.role])


class RoleAssignments:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assignments: list[RoleAssignment] = []

    def assign(self, principal_id: str, role: str, *, secret: str | None = None) -> RoleAssignment:
        if role not in ROLE_DATA_ACTIONS:
            raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLE_DATA_ACTIONS)}")
        assignment = RoleAssignment(principal_id.lower(), role, secret)
        with self._lock:
            if assignment not in self._assignments:
                self._assignments.append(assignment)
        return assignment

    def revoke(self, principal_id: str, role: str, *, secret: str | None = None) -> None:
        with self._lock:
            self._assignments = [
                a for a in self._assignments if a != RoleAssignment(principal_id.lower(), role, secret)
            ]

    def roles_of(self, principal_id: str) -> list[RoleAssignment]:
        with self._lock:
            return [a for a in self._assignments if a.principal_id == principal_id.lower()]

    def allows(self, principal_id: str, action: str, secret: str | None = None) -> bool:
        return any(a.covers(action, secret) for a in self.roles_of(principal_id))
