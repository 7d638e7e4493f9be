"""Issue 4 item 1: several environments at once, tables from a schema file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.dataverse import AppUser, DataverseEmulator, EmulatorConfig, Role, Schema
from emulators.dataverse.schema import ColumnType, SchemaError
from emulators.servers import ServerGroup
from emulators.tls import LocalCA
from emulators.tokens import TokenAuthority
from tests.emulators.dataverse.conftest import Cloud

CUSTOM_SCHEMA: dict[str, Any] = {
    "tables": [
        {
            "logical_name": "new_reading",
            "entity_set": "new_readings",
            "primary_id": "new_readingid",
            "primary_name": "new_name",
            "change_tracking": False,
            "bulk_actions": False,
            "columns": {
                "new_name": {"type": "string", "max_length": 10},
                "new_sensor": {"type": "int", "required": True},
                "new_sequence": {"type": "bigint"},
                "new_value": {"type": "double"},
                "new_site": {
                    "type": "lookup",
                    "targets": {"new_site": {"navigation": "new_siteid", "collection": "new_site_readings"}},
                },
            },
            "keys": [{"name": "new_sensor_sequence", "columns": ["new_sensor", "new_sequence"]}],
        },
        {
            "logical_name": "new_site",
            "entity_set": "new_sites",
            "primary_id": "new_siteid",
            "primary_name": "new_name",
            "columns": {"new_name": {"type": "string"}, "new_code": {"type": "string", "max_length": 8}},
            "keys": [["new_code"]],
        },
    ]
}


def test_each_org_has_its_own_origin_tenant_and_rows(cloud: Cloud) -> None:
    assert cloud.urls["contoso"] != cloud.urls["fabrikam"]
    assert cloud.org("contoso").tenant_id != cloud.org("fabrikam").tenant_id
    assert cloud.api("contoso").post("accounts", json={"name": "only in contoso"}).status_code == 204
    assert cloud.org("contoso").count("account") == 1
    assert cloud.org("fabrikam").count("account") == 0
    assert cloud.api("fabrikam").get("accounts").json()["value"] == []


def test_demo_schema_tables_keys_and_switches() -> None:
    schema = Schema.load()
    account, contact, orderline, task = (schema.tables[n] for n in ("account", "contact", "dvs_orderline", "task"))
    assert [k.columns for k in account.keys] == [("accountnumber",)]
    assert [k.columns for k in contact.keys] == [("emailaddress1",)]
    assert [k.columns for k in orderline.keys] == [("dvs_ordernumber", "dvs_linenumber")]
    assert contact.navigations["parentcustomerid_account"][1].table == "account"
    assert orderline.navigations["dvs_accountid"][1].table == "account"
    assert "Account_Tasks" in account.collections
    # Current docs list CreateMultiple for account/contact (2023 docs did not); the switch is per table.
    assert (account.bulk_actions, contact.bulk_actions, orderline.bulk_actions, task.bulk_actions) == (
        True,
        True,
        True,
        False,
    )
    assert orderline.columns["dvs_linenumber"].required
    assert account.columns["revenue"].type is ColumnType.MONEY


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["columns"].update(new_bad={"type": "text"}), "is not one of"),
        (lambda t: t.update(keys=[["nope"]]), "unknown column"),
        (lambda t: t.update(primary_name="missing"), "primary_name"),
        (lambda t: t["columns"].update(new_x={"type": "lookup", "targets": {"ghost": "new_ghost"}}), "unknown"),
        (lambda t: t["columns"].update(new_y={"type": "choice"}), "options"),
        (lambda t: t.update(keys=[["new_value"]]), "type keys do not allow"),
    ],
)
def test_schema_errors_name_what_is_wrong(change: Any, message: str) -> None:
    data = json.loads(json.dumps(CUSTOM_SCHEMA))
    change(data["tables"][0])
    with pytest.raises(SchemaError, match=message):
        Schema.from_dict(data)


def test_an_org_with_a_custom_schema_file(tmp_path: Path, local_ca: LocalCA) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(CUSTOM_SCHEMA))
    authority = TokenAuthority()
    emulator = DataverseEmulator(authority, schema=path, config=EmulatorConfig.fast())
    app = "11110000-0000-4000-8000-000000000001"
    tenant = "22220000-0000-4000-8000-000000000002"
    role = Role.for_tables("all", ["new_reading", "new_site"])
    emulator.add_org("lab", tenant_id=tenant, app_users=[AppUser(app_id=app, roles=[role])])
    group = ServerGroup(local_ca)
    url = group.add("lab", emulator.org_app("lab"))
    emulator.set_org_url("lab", url)
    group.start()
    try:
        token = authority.issue(tenant_id=tenant, audience=url, app_id=app, object_id="o").access_token
        headers = {"Authorization": f"Bearer {token}"}
        root = f"{url}/api/data/v9.2"
        verify = str(local_ca.ca_bundle)
        site = requests.patch(
            f"{root}/new_sites(new_code='S1')", json={"new_name": "Site"}, headers=headers, verify=verify
        )
        assert site.status_code == 204
        reading = requests.patch(
            f"{root}/new_readings(new_sensor=7,new_sequence=42)",
            json={"new_value": 1.5, "new_siteid@odata.bind": "new_sites(new_code='S1')"},
            headers=headers,
            verify=verify,
        )
        assert reading.status_code == 204
        assert reading.headers["OData-EntityId"] == f"{root}/new_readings(new_sensor=7,new_sequence=42)"
        stored = emulator.org("lab").row("new_reading", new_sensor=7, new_sequence=42)
        assert stored is not None
        assert stored["new_value"] == 1.5
        bulk = requests.post(
            f"{root}/new_readings/Microsoft.Dynamics.CRM.CreateMultiple",
            json={"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.new_reading", "new_sensor": 1}]},
            headers=headers,
            verify=verify,
        )
        assert bulk.status_code == 400
        assert bulk.json()["error"]["code"] == "0x80040800"
    finally:
        group.stop()
