"""Issue 4 item 5: CreateMultiple, UpdateMultiple, UpsertMultiple with standard-table semantics."""

from __future__ import annotations

from typing import Any

from tests.emulators.dataverse.conftest import Api, Cloud, error_of

ORDERLINE = "Microsoft.Dynamics.CRM.dvs_orderline"


def line(order: str, number: int, **values: Any) -> dict[str, Any]:
    return {
        "@odata.type": ORDERLINE,
        "@odata.id": f"dvs_orderlines(dvs_ordernumber='{order}',dvs_linenumber={number})",
        **values,
    }


def test_create_multiple_returns_ids(cloud: Cloud, api: Api) -> None:
    targets = [
        {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": f"A{i}", "accountnumber": f"CM-{i}"} for i in range(3)
    ]
    response = api.post("accounts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{api.root}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
    assert len(body["Ids"]) == 3
    assert {cloud.org().row("account", i)["accountnumber"] for i in body["Ids"]} == {"CM-0", "CM-1", "CM-2"}  # type: ignore[index]


def test_update_multiple_by_primary_id(cloud: Cloud, api: Api) -> None:
    ids = cloud.org().seed("account", [{"name": "old", "accountnumber": f"UM-{i}"} for i in range(2)])
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": i, "name": "new"} for i in ids]
    response = api.post("accounts/Microsoft.Dynamics.CRM.UpdateMultiple", json={"Targets": targets})
    assert response.status_code == 204
    assert {r["name"] for r in cloud.org().rows("account")} == {"new"}
    missing = [
        {
            "@odata.type": "Microsoft.Dynamics.CRM.account",
            "accountid": "00000000-0000-0000-0000-0000000000aa",
            "name": "x",
        }
    ]
    failed = api.post("accounts/Microsoft.Dynamics.CRM.UpdateMultiple", json={"Targets": targets + missing})
    assert failed.status_code == 404
    assert error_of(failed)["code"] == "0x80040217"


def test_upsert_multiple_creates_and_updates_by_alternate_key(cloud: Cloud, api: Api) -> None:
    first = api.post(
        "dvs_orderlines/Microsoft.Dynamics.CRM.UpsertMultiple",
        json={"Targets": [line("SO-1", n, dvs_product="Bolt", dvs_quantity=n) for n in (1, 2)]},
    )
    assert first.status_code == 204
    assert first.content == b""
    second = api.post(
        "dvs_orderlines/Microsoft.Dynamics.CRM.UpsertMultiple",
        json={"Targets": [line("SO-1", 2, dvs_product="Nut"), line("SO-1", 3, dvs_product="Washer")]},
    )
    assert second.status_code == 204
    rows = {r["dvs_linenumber"]: r for r in cloud.org().rows("dvs_orderline")}
    assert {n: r["dvs_product"] for n, r in rows.items()} == {1: "Bolt", 2: "Nut", 3: "Washer"}
    assert rows[2]["dvs_quantity"] == 2  # an update keeps the columns it does not send


def test_one_bad_target_rolls_back_the_whole_request_and_is_named(cloud: Cloud, api: Api) -> None:
    cloud.org().seed("dvs_orderline", [{"dvs_ordernumber": "SO-9", "dvs_linenumber": 1, "dvs_product": "kept"}])
    targets = [
        line("SO-9", 1, dvs_product="changed"),
        line("SO-9", 2, dvs_product="new"),
        line("SO-9", 3, dvs_product="x" * 101),
    ]
    response = api.post(
        "dvs_orderlines/Microsoft.Dynamics.CRM.UpsertMultiple",
        json={"Targets": targets},
        headers={"Prefer": 'odata.include-annotations="*"'},
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "0x80044331"
    assert "'dvs_product' attribute of the 'dvs_orderline' entity" in error["message"]
    assert error["@Microsoft.PowerApps.CDS.ErrorDetails.RequestIndex"] == 2
    rows = cloud.org().rows("dvs_orderline")
    assert [(r["dvs_linenumber"], r["dvs_product"]) for r in rows] == [(1, "kept")]


def test_duplicate_key_error_names_the_record_values(cloud: Cloud, api: Api) -> None:
    targets = [
        {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "a", "emailaddress1": "same@x.com"},
        {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "b", "emailaddress1": "same@x.com"},
    ]
    response = api.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    assert response.status_code == 412
    assert error_of(response)["code"] == "0x80060892"
    assert "same@x.com" in error_of(response)["message"]
    assert cloud.org().count("contact") == 0


def test_key_in_body_and_odata_id_fails_only_on_the_create_path(cloud: Cloud, api: Api) -> None:
    create_path = api.post(
        "dvs_orderlines/Microsoft.Dynamics.CRM.UpsertMultiple",
        json={"Targets": [line("SO-5", 1, dvs_ordernumber="SO-5", dvs_product="x")]},
    )
    assert create_path.status_code == 400
    assert error_of(create_path) == {"code": "0x80040216", "message": "An unexpected error occurred."}
    assert cloud.org().count("dvs_orderline") == 0

    cloud.org().seed("dvs_orderline", [{"dvs_ordernumber": "SO-5", "dvs_linenumber": 1}])
    update_path = api.post(
        "dvs_orderlines/Microsoft.Dynamics.CRM.UpsertMultiple",
        json={"Targets": [line("SO-5", 1, dvs_ordernumber="SO-5", dvs_product="y")]},
    )
    assert update_path.status_code == 204
    assert cloud.org().rows("dvs_orderline")[0]["dvs_product"] == "y"


def test_table_without_bulk_messages_and_delete_multiple(api: Api) -> None:
    task = [{"@odata.type": "Microsoft.Dynamics.CRM.task", "subject": "x"}]
    unsupported = api.post("tasks/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": task})
    assert unsupported.status_code == 400
    assert error_of(unsupported) == {
        "code": "0x80040800",
        "message": "The 'CreateMultiple' method does not support entities of type 'task'.",
    }
    delete = api.post("accounts/Microsoft.Dynamics.CRM.DeleteMultiple", json={"Targets": []})
    assert error_of(delete)["message"] == "DeleteMultiple has not yet been implemented."
    probe = (
        "sdkmessagefilters?$select=sdkmessagefilterid"
        "&$filter=sdkmessageid/name eq @message and primaryobjecttypecode eq @table"
    )
    assert api.get(probe + "&@message='CreateMultiple'&@table='task'").json()["value"] == []
    assert len(api.get(probe + "&@message='CreateMultiple'&@table='dvs_orderline'").json()["value"]) == 1


def test_targets_need_odata_type(api: Api) -> None:
    response = api.post("accounts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [{"name": "x"}]})
    assert response.status_code == 400
    assert "A type name was not provided for an instance of an abstract type" in error_of(response)["message"]


def test_a_bulk_request_counts_as_one_request(cloud: Cloud, api: Api) -> None:
    targets = [line("SO-7", n) for n in range(1, 501)]
    response = api.post("dvs_orderlines/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": targets})
    assert response.status_code == 204
    assert response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "5999"
    counters = cloud.org().counters
    assert counters.requests["UpsertMultiple"] == 1
    assert counters.records_written == 500
    assert counters.operations == 500
