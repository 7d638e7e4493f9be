"""Application users, people, security roles and privilege checks of an emulated environment.

- An application user is bound to an app registration's ApplicationId and found by the token's `appid`
  (PAD/build-web-applications-server-server-s2s-authentication.md).
- Table privileges are Create/Read/Write/Delete/Append/AppendTo, named `prv<Access><SchemaName>` (e.g.
  prvCreateAccount). Setting a lookup needs Append on the row's table and AppendTo on the target's table.
- Impersonation (`CallerObjectId` = Entra object id, or legacy `MSCRMCallerID` = systemuserid) needs
  prvActOnBehalfOfAnotherUser; the effective privileges are those both principals hold
  (PAD/webapi/impersonate-another-user-web-api.md).
- `MSCRM.BypassBusinessLogicExecution` needs prvBypassCustomBusinessLogic and `MSCRM.BypassCustomPluginExecution`
  needs prvBypassCustomPlugins (PAD/bypass-custom-business-logic.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from emulators.dataverse import errors
from emulators.dataverse.schema import Table


class Access(StrEnum):
    CREATE = "Create"
    READ = "Read"
    WRITE = "Write"
    DELETE = "Delete"
    APPEND = "Append"
    APPEND_TO = "AppendTo"

    __hash__ = str.__hash__  # Enum's Python-level hash is slow on the bulk path; equal to the str's anyway


ALL_ACCESS = frozenset(Access)
ACT_ON_BEHALF = "prvActOnBehalfOfAnotherUser"
BYPASS_CUSTOM_PLUGINS = "prvBypassCustomPlugins"
BYPASS_CUSTOM_BUSINESS_LOGIC = "prvBypassCustomBusinessLogic"
ANY_TABLE = "*"


@dataclass(frozen=True)
class Role:
    """A security role: access per table logical name ("*" = every table) plus special privileges by name."""

    name: str
    tables: Mapping[str, frozenset[Access]] = field(default_factory=dict)
    special: frozenset[str] = frozenset()

    def grants(self, logical_name: str, access: Access) -> bool:
        allowed = self.tables.get(logical_name) or self.tables.get(ANY_TABLE)
        return allowed is not None and access in allowed

    @classmethod
    def for_tables(
        cls, name: str, tables: Sequence[str], access: frozenset[Access] = ALL_ACCESS, special: Sequence[str] = ()
    ) -> Role:
        return cls(name, {t: frozenset(access) for t in tables}, frozenset(special))


def systemuser_id_for(org_name: str, principal: str) -> str:
    """Stable systemuserid of a principal in an environment (Dataverse assigns one per environment)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dataverse-emulator/{org_name}/systemuser/{principal.lower()}"))


@dataclass(frozen=True)
class AppUser:
    """An application user: the app registration `app_id` (client id) with its roles in one environment."""

    app_id: str
    object_id: str | None = None  # the app's service principal object id in this tenant (informational)
    roles: Sequence[Role] = ()
    name: str | None = None
    systemuser_id: str | None = None  # assigned by add_org when not given


@dataclass(frozen=True)
class User:
    """A person who is a user of the environment and may be impersonated."""

    object_id: str  # Entra object id (CallerObjectId)
    systemuser_id: str  # Dataverse systemuserid (MSCRMCallerID)
    name: str = ""
    roles: Sequence[Role] = ()


@dataclass(frozen=True)
class Principal:
    systemuser_id: str
    name: str
    roles: Sequence[Role]
    throttle_key: str  # service protection limits are counted per user
    _granted: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False, repr=False)

    def holds(self, logical_name: str, access: Access) -> bool:
        key = (logical_name, access)
        granted = self._granted.get(key)
        if granted is None:
            granted = self._granted[key] = any(r.grants(logical_name, access) for r in self.roles)
        return granted

    def holds_special(self, privilege: str) -> bool:
        return any(privilege in r.special for r in self.roles)


@dataclass(frozen=True)
class CallContext:
    """Who calls (the application user) and on whose behalf (itself, or an impersonated user)."""

    caller: Principal
    effective: Principal

    @property
    def impersonating(self) -> bool:
        return self.caller.systemuser_id != self.effective.systemuser_id

    def require(self, table: Table, access: Access) -> None:
        for principal in {
            self.caller.systemuser_id: self.caller,
            self.effective.systemuser_id: self.effective,
        }.values():
            if not principal.holds(table.logical_name, access):
                raise errors.privilege_denied(
                    principal.systemuser_id,
                    f"prv{access.value}{table.schema_name}",
                    table.logical_name,
                    self.caller.systemuser_id,
                )

    def require_special(self, privilege: str) -> None:
        if not self.caller.holds_special(privilege):
            raise errors.privilege_denied(self.caller.systemuser_id, privilege, None, self.caller.systemuser_id)


def app_principal(app_user: AppUser) -> Principal:
    assert app_user.systemuser_id is not None
    return Principal(
        systemuser_id=app_user.systemuser_id,
        name=app_user.name or f"# {app_user.app_id}",
        roles=tuple(app_user.roles),
        throttle_key=app_user.systemuser_id,
    )


def user_principal(user: User) -> Principal:
    return Principal(user.systemuser_id, user.name or user.object_id, tuple(user.roles), user.systemuser_id)


def resolve_impersonation(
    caller: Principal,
    headers: Mapping[str, str],
    by_object_id: Mapping[str, User],
    by_systemuser_id: Mapping[str, User],
) -> CallContext:
    """Apply CallerObjectId / MSCRMCallerID and the bypass headers; raise the documented 403s."""
    context = CallContext(caller, caller)
    object_id = headers.get("callerobjectid")
    systemuser_id = headers.get("mscrmcallerid")
    if object_id or systemuser_id:
        if not caller.holds_special(ACT_ON_BEHALF):
            raise errors.cannot_act_on_behalf()
        identifier = (object_id or systemuser_id or "").strip().lower()
        user = by_object_id.get(identifier) if object_id else by_systemuser_id.get(identifier)
        if user is None:
            raise errors.caller_not_found(identifier)
        context = CallContext(caller, user_principal(user))
    if headers.get("mscrm.bypassbusinesslogicexecution"):
        context.require_special(BYPASS_CUSTOM_BUSINESS_LOGIC)
    if headers.get("mscrm.bypasscustompluginexecution", "").strip().lower() == "true":
        context.require_special(BYPASS_CUSTOM_PLUGINS)
    return context
