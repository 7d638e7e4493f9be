"""Demo application users, people and security roles of the local cloud's Dataverse environments.

The app registration `seed.DATAVERSE_APP_CLIENT_ID` is an application user in contoso and fabrikam with a custom
role (S2S application users get a custom role, PAD/build-web-applications-server-server-s2s-authentication.md)
holding what dataverse-sync uses: create, read, write, delete, append and append-to on the demo tables, and
prvActOnBehalfOfAnotherUser for records that name a `caller_object_id` (CallerObjectId header,
PAD/webapi/impersonate-another-user-web-api.md). No bypass privileges. Tests compose other application users from
the extra roles below (`TABLE_ONLY_ROLE` is the sync role without delete and impersonation).
"""

from __future__ import annotations

from emulators import seed
from emulators.dataverse.emulator import DataverseEmulator
from emulators.dataverse.org import Org
from emulators.dataverse.security import (
    ACT_ON_BEHALF,
    ALL_ACCESS,
    BYPASS_CUSTOM_BUSINESS_LOGIC,
    BYPASS_CUSTOM_PLUGINS,
    Access,
    AppUser,
    Role,
    User,
)

DEMO_TABLES = ("account", "contact", "dvs_orderline", "task")
SYNC_ROLE = Role.for_tables("dataverse-sync integration", DEMO_TABLES, ALL_ACCESS, special=(ACT_ON_BEHALF,))
# Roles for tests of the security model.
TABLE_ONLY_ROLE = Role.for_tables(
    "Create, update and link only",
    DEMO_TABLES,
    frozenset({Access.CREATE, Access.READ, Access.WRITE, Access.APPEND, Access.APPEND_TO}),
)
NO_PRIVILEGE_ROLE = Role("No privileges")
READ_ONLY_ROLE = Role.for_tables("Read only", DEMO_TABLES, frozenset({Access.READ}))
ACT_ON_BEHALF_ROLE = Role("Delegate", special=frozenset({ACT_ON_BEHALF}))
BYPASS_ROLE = Role("Bypass custom logic", special=frozenset({BYPASS_CUSTOM_PLUGINS, BYPASS_CUSTOM_BUSINESS_LOGIC}))


def demo_app_users(tenant_id: str) -> list[AppUser]:
    return [
        AppUser(
            app_id=seed.DATAVERSE_APP_CLIENT_ID,
            object_id=seed.DATAVERSE_APP_OBJECT_IDS.get(tenant_id),
            roles=[SYNC_ROLE],
            name="dataverse-sync",
        )
    ]


def demo_users(org_name: str) -> list[User]:
    if org_name != "contoso":
        return []
    return [
        User(
            object_id=seed.CONTOSO_USER_OBJECT_ID,
            systemuser_id=seed.CONTOSO_USER_SYSTEMUSER_ID,
            name="Dana Contoso",
            roles=[SYNC_ROLE],
        )
    ]


def add_demo_orgs(emulator: DataverseEmulator) -> list[Org]:
    """contoso and fabrikam (seed.ORGS) with the demo application user and people."""
    return [
        emulator.add_org(name, tenant_id=tenant, app_users=demo_app_users(tenant), users=demo_users(name))
        for name, tenant in seed.ORGS.items()
    ]
