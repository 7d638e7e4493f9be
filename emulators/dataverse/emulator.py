"""The Dataverse Web API emulator: several environments (orgs), each its own ASGI app on its own origin.

emu = DataverseEmulator(authority)                      # demo schema, realistic latency
emu.add_org("contoso", tenant_id=..., app_users=[AppUser(app_id=..., roles=[...])], users=[...])
url = group.add("dataverse-contoso", emu.org_app("contoso"))
emu.set_org_url("contoso", url)                          # token audience and the URLs the API returns
admin_url = group.add("dataverse-admin", emu.admin_app())
emu.org("contoso")                                       # in-process handle: rows, counters, faults, limits
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from emulators.dataverse.admin import AdminApp
from emulators.dataverse.app import OrgApp
from emulators.dataverse.config import EmulatorConfig
from emulators.dataverse.org import Org
from emulators.dataverse.schema import Schema
from emulators.dataverse.security import AppUser, User
from emulators.tokens import TokenAuthority

ENTRA_AUTHORITY_HOST = "https://login.microsoftonline.com"


class DataverseEmulator:
    def __init__(
        self,
        authority: TokenAuthority,
        schema: Path | None = None,
        config: EmulatorConfig | None = None,
        *,
        authority_host: str = ENTRA_AUTHORITY_HOST,
    ) -> None:
        self.authority = authority
        self.schema = Schema.load(schema)
        self.config = config or EmulatorConfig()
        self.authority_host = authority_host  # named in 401 challenges (set it to the Entra emulator's URL)
        self.orgs: dict[str, Org] = {}
        self._apps: dict[str, OrgApp] = {}
        self._admin: AdminApp | None = None

    def add_org(
        self,
        name: str,
        *,
        tenant_id: str,
        app_users: Iterable[AppUser] = (),
        users: Iterable[User] = (),
        schema: Path | None = None,
        config: EmulatorConfig | None = None,
    ) -> Org:
        if name in self.orgs:
            raise ValueError(f"org {name!r} already exists")
        org = Org(
            name,
            tenant_id=tenant_id,
            schema=Schema.load(schema) if schema else self.schema,
            config=config or self.config,
            app_users=app_users,
            users=users,
        )
        self.orgs[name] = org
        return org

    def org(self, name: str) -> Org:
        try:
            return self.orgs[name]
        except KeyError:
            raise KeyError(f"no org {name!r}; known: {sorted(self.orgs)}") from None

    def org_app(self, name: str) -> OrgApp:
        if name not in self._apps:
            self._apps[name] = OrgApp(self.org(name), self.authority, self.authority_host)
        return self._apps[name]

    def set_org_url(self, name: str, url: str) -> None:
        """The org's origin (https://127.0.0.1:<port>): token audience, OData-EntityId, @odata.context, links."""
        self.org(name).url = url.rstrip("/")
        if name in self._apps:
            self._apps[name].forget_tokens()  # validated for the previous audience

    def admin_app(self) -> AdminApp:
        if self._admin is None:
            self._admin = AdminApp(self)
        return self._admin
