"""Fixtures for the Dataverse emulator tests: one server group for the whole folder, data reset per test.

Two environments (contoso, fabrikam) with the demo application user, plus extra application users in contoso
that carry the test roles (no privilege, read only, act on behalf, bypass, full). Requests go over HTTPS with
`requests`, passing `verify=` on every call (REQUESTS_CA_BUNDLE would override Session.verify).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from emulators import seed
from emulators.dataverse import AppUser, DataverseEmulator, EmulatorConfig, Org, Role, User, add_demo_orgs
from emulators.dataverse.demo import (
    ACT_ON_BEHALF_ROLE,
    BYPASS_ROLE,
    NO_PRIVILEGE_ROLE,
    READ_ONLY_ROLE,
    SYNC_ROLE,
    TABLE_ONLY_ROLE,
)
from emulators.dataverse.limits import LatencyModel, ServiceProtectionLimits
from emulators.dataverse.security import ALL_ACCESS
from emulators.servers import ServerGroup
from emulators.tls import LocalCA
from emulators.tokens import TokenAuthority

CONTOSO = seed.CONTOSO_TENANT_ID
FABRIKAM = seed.FABRIKAM_TENANT_ID
SYNC_APP = seed.DATAVERSE_APP_CLIENT_ID
NO_PRIVILEGE_APP = "7e570001-0000-4000-8000-00000000aa01"
READ_ONLY_APP = "7e570002-0000-4000-8000-00000000aa02"
DELEGATE_APP = "7e570003-0000-4000-8000-00000000aa03"
BYPASS_APP = "7e570004-0000-4000-8000-00000000aa04"
FULL_APP = "7e570005-0000-4000-8000-00000000aa05"
TABLE_ONLY_APP = "7e570006-0000-4000-8000-00000000aa06"  # no delete, no impersonation
UNKNOWN_APP = "7e570009-0000-4000-8000-00000000aa09"
READER_OBJECT_ID = "0b1ec7ed-0000-4000-8000-0000000c0202"  # a person with read-only access
READER_SYSTEMUSER_ID = "5959e0e0-0000-4000-8000-0000000c0202"
FULL_ROLE = Role("Full access", {"*": ALL_ACCESS})
ODATA_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


@dataclass
class Api:
    """A Web API client for one org and one application (token minted directly by the authority)."""

    url: str
    verify: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def root(self) -> str:
        return f"{self.url}/api/data/v9.2"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**ODATA_HEADERS, "Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        target = path if path.startswith("https://") else f"{self.root}/{path}"
        return self.session.request(method, target, headers=headers, verify=self.verify, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass
class Cloud:
    emulator: DataverseEmulator
    authority: TokenAuthority
    urls: dict[str, str]
    admin_url: str
    verify: str
    _sessions: dict[str, requests.Session] = field(default_factory=dict)

    def org(self, name: str = "contoso") -> Org:
        return self.emulator.org(name)

    def token(self, org: str = "contoso", app_id: str = SYNC_APP, **kwargs: Any) -> str:
        tenant = kwargs.pop("tenant_id", self.org(org).tenant_id)
        audience = kwargs.pop("audience", self.urls[org])
        object_id = kwargs.pop("object_id", "5e7a1ce0-0000-4000-8000-00000000ffff")
        return self.authority.issue(
            tenant_id=tenant, audience=audience, app_id=app_id, object_id=object_id, **kwargs
        ).access_token

    def api(self, org: str = "contoso", app_id: str = SYNC_APP, token: str | None = None) -> Api:
        session = self._sessions.setdefault(org, requests.Session())
        return Api(self.urls[org], self.verify, self.token(org, app_id) if token is None else token, session)

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.admin_url}{path}", verify=self.verify, timeout=30, **kwargs)


def _test_app_users() -> list[AppUser]:
    return [
        AppUser(app_id=NO_PRIVILEGE_APP, roles=[NO_PRIVILEGE_ROLE]),
        AppUser(app_id=READ_ONLY_APP, roles=[READ_ONLY_ROLE]),
        AppUser(app_id=DELEGATE_APP, roles=[SYNC_ROLE, ACT_ON_BEHALF_ROLE]),
        AppUser(app_id=BYPASS_APP, roles=[SYNC_ROLE, BYPASS_ROLE]),
        AppUser(app_id=FULL_APP, roles=[FULL_ROLE]),
        AppUser(app_id=TABLE_ONLY_APP, roles=[TABLE_ONLY_ROLE]),
    ]


@pytest.fixture(scope="session")
def cloud(local_ca: LocalCA) -> Iterator[Cloud]:
    authority = TokenAuthority()
    emulator = DataverseEmulator(authority, config=EmulatorConfig.fast())
    add_demo_orgs(emulator)
    contoso = emulator.org("contoso")
    for app_user in _test_app_users():
        contoso.add_app_user(app_user)
    contoso.add_user(User(READER_OBJECT_ID, READER_SYSTEMUSER_ID, "Rita Reader", [READ_ONLY_ROLE]))
    group = ServerGroup(local_ca)
    urls = {}
    for name in emulator.orgs:
        urls[name] = group.add(f"dataverse-{name}", emulator.org_app(name))
        emulator.set_org_url(name, urls[name])
    admin_url = group.add("dataverse-admin", emulator.admin_app())
    group.start()
    try:
        yield Cloud(emulator, authority, urls, admin_url, str(local_ca.ca_bundle))
    finally:
        group.stop()


@pytest.fixture(autouse=True)
def clean_orgs(cloud: Cloud) -> None:
    """Every test starts with empty tables, zero counters, no faults, default limits and no latency."""
    for org in cloud.emulator.orgs.values():
        org.reset()
        org.set_limits(**ServiceProtectionLimits().to_json())
        org.set_latency(LatencyModel.zero())
        org.change_token_floor = 0


@pytest.fixture
def api(cloud: Cloud) -> Api:
    """The demo application user in contoso (create/read/write/append/appendTo on the demo tables)."""
    return cloud.api("contoso", SYNC_APP)


@pytest.fixture
def admin_api(cloud: Cloud) -> Api:
    """An application user with every privilege on every table (deletes)."""
    return cloud.api("contoso", FULL_APP)


def error_of(response: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body
