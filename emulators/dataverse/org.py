"""One emulated Dataverse environment (organization): its users, rows, limits, faults and counters.

`DataverseEmulator.org(name)` returns this object: the in-process handle tests use to read rows and counters,
seed data, script faults and change limits. Its state lives on the servers' event loop; change it while no
request is in flight (or through the admin API, which runs on that loop).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from emulators.dataverse.config import SERVICE_VERSION, EmulatorConfig
from emulators.dataverse.faults import FaultInjector, FaultRule
from emulators.dataverse.limits import Cost, LatencyModel, ServiceProtectionLimits, Throttle
from emulators.dataverse.schema import Schema, Table
from emulators.dataverse.security import ALL_ACCESS, AppUser, Principal, Role, User, systemuser_id_for
from emulators.dataverse.store import Row, Store, TableData
from emulators.dataverse.webapi import WebApi


@dataclass
class Counters:
    requests: Counter[str] = field(default_factory=Counter)  # by kind: Create, UpsertMultiple, $batch, ...
    responses: Counter[str] = field(default_factory=Counter)  # by HTTP status
    operations: int = 0  # record operations executed (a bulk action of 1000 targets = 1000)
    records_written: int = 0  # committed creates/updates/deletes
    throttled: Counter[str] = field(default_factory=Counter)  # 429s sent, by error code
    faults: Counter[str] = field(default_factory=Counter)  # injected faults, by kind
    execution_ms: float = 0.0  # simulated server time

    def add(self, cost: Cost, committed: bool) -> None:
        self.requests[cost.kind or "Other"] += 1
        self.operations += cost.operations
        if committed:
            self.records_written += cost.records_written

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "responses": dict(self.responses),
            "operations": self.operations,
            "records_written": self.records_written,
            "throttled": dict(self.throttled),
            "faults": dict(self.faults),
            "execution_ms": round(self.execution_ms, 3),
        }


class Org:
    def __init__(
        self,
        name: str,
        *,
        tenant_id: str,
        schema: Schema,
        config: EmulatorConfig,
        app_users: Iterable[AppUser] = (),
        users: Iterable[User] = (),
    ) -> None:
        self.name = name
        self.tenant_id = tenant_id.lower()
        self.organization_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dataverse-emulator/{name}/organization"))
        self.business_unit_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dataverse-emulator/{name}/businessunit"))
        self.schema = schema
        self.config = config
        self.store = Store(schema)
        self.latency = config.latency
        self.throttle = Throttle(config.limits)
        self.faults = FaultInjector(config.fault_seed)
        self.counters = Counters()
        self.url: str | None = None
        self.change_token_floor = 0  # delta tokens older than this version are expired
        self.app_users: dict[str, AppUser] = {}
        self.users_by_object_id: dict[str, User] = {}
        self.users_by_systemuser_id: dict[str, User] = {}
        for app_user in app_users:
            self.add_app_user(app_user)
        for user in users:
            self.add_user(user)
        self.api = WebApi(self)

    # --- identity ------------------------------------------------------------------------------------------

    @property
    def service_root(self) -> str:
        if self.url is None:
            raise RuntimeError(f"org {self.name!r} has no URL yet: call DataverseEmulator.set_org_url first")
        return f"{self.url}/api/data/{SERVICE_VERSION}"

    def add_app_user(self, app_user: AppUser) -> AppUser:
        systemuser_id = app_user.systemuser_id or systemuser_id_for(self.name, app_user.app_id)
        stored = replace(app_user, app_id=app_user.app_id.lower(), systemuser_id=systemuser_id)
        self.app_users[stored.app_id] = stored
        return stored

    def add_user(self, user: User) -> None:
        self.users_by_object_id[user.object_id.lower()] = user
        self.users_by_systemuser_id[user.systemuser_id.lower()] = user

    def system_principal(self) -> Principal:
        """SYSTEM: used for seeding rows outside the API."""
        role = Role("System", {"*": ALL_ACCESS})
        return Principal(systemuser_id_for(self.name, "system"), "SYSTEM", (role,), "system")

    # --- data ----------------------------------------------------------------------------------------------

    def table(self, logical_name: str) -> Table:
        table = self.schema.tables.get(logical_name)
        if table is None:
            raise KeyError(f"org {self.name!r} has no table {logical_name!r}")
        return table

    def data(self, logical_name: str) -> TableData:
        return self.store.data(self.table(logical_name).logical_name)

    def rows(self, logical_name: str) -> list[Row]:
        return [dict(r) for r in self.data(logical_name).rows.values()]

    def row(self, logical_name: str, record_id: str | None = None, **key: Any) -> Row | None:
        """A row by primary id, or by the alternate key whose columns are given as keyword arguments."""
        data = self.data(logical_name)
        if record_id is None:
            alternate = data.table.key_for_columns(set(key))
            if alternate is None:
                raise KeyError(f"{logical_name} has no alternate key on {sorted(key)}")
            record_id = data.find_by_key(alternate, key)
        found = data.rows.get(record_id.lower()) if record_id else None
        return dict(found) if found is not None else None

    def count(self, logical_name: str) -> int:
        return len(self.data(logical_name).rows)

    def counts(self) -> dict[str, int]:
        return {name: len(data.rows) for name, data in self.store.tables.items()}

    def seed(self, logical_name: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Create rows as SYSTEM, bypassing auth and limits; bodies are Web API JSON (binds allowed)."""
        return self.api.seed(self.table(logical_name), records, self.system_principal())

    def reset(self, *, data: bool = True, counters: bool = True, faults: bool = True, throttle: bool = True) -> None:
        if data:
            self.store.clear()
        if counters:
            self.counters = Counters()
        if faults:
            self.faults.clear()
        if throttle:
            self.throttle.reset()

    # --- behaviour ------------------------------------------------------------------------------------------

    def add_fault(self, rule: FaultRule | None = None, **fields: Any) -> FaultRule:
        fault = rule or FaultRule(**fields)
        self.faults.add(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def limits(self) -> ServiceProtectionLimits:
        """The service protection limits the throttle enforces (change them with `set_limits`)."""
        return self.throttle.limits

    def set_limits(self, **changes: Any) -> ServiceProtectionLimits:
        self.throttle.limits = replace(self.throttle.limits, **changes)
        return self.throttle.limits

    def set_latency(self, model: LatencyModel | None = None, **changes: Any) -> LatencyModel:
        self.latency = model or self.latency.updated(changes)
        return self.latency

    def expire_change_tokens(self) -> None:
        """Every delta token issued so far becomes expired (as after ExpireChangeTrackingInDays)."""
        self.change_token_floor = self.store.next_version()  # tokens issued from now on carry >= this
