"""Issue 4 item 3: the Web API surface (WhoAmI, EntityDefinitions, create, retrieve, query, upsert, delete, binds,
validation, key URLs)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from emulators.dataverse.security import systemuser_id_for
from tests.emulators.dataverse.conftest import SYNC_APP, Api, Cloud, error_of

GUID_1 = "00000000-0000-0000-0000-000000000001"


def test_who_am_i_returns_the_application_user_and_rejects_post(cloud: Cloud, api: Api) -> None:
    response = api.get("WhoAmI")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{api.root}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
    assert body["UserId"] == systemuser_id_for("contoso", SYNC_APP)
    assert body["OrganizationId"] == cloud.org().organization_id
    assert set(body) == {"@odata.context", "BusinessUnitId", "UserId", "OrganizationId"}
    assert response.headers["x-ms-dop-hint"] == "8"
    assert response.headers["REQ_ID"] == response.headers["x-ms-service-request-id"]

    wrong = api.post("WhoAmI", json={})
    assert wrong.status_code == 404
    assert error_of(wrong)["message"].startswith("No HTTP resource was found that matches the request URI")


def test_entity_definitions_expose_entity_sets_primary_ids_and_keys(api: Api) -> None:
    response = api.get(
        "EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$expand=Keys($select=KeyAttributes)"
    )
    assert response.status_code == 200
    tables = {t["LogicalName"]: t for t in response.json()["value"]}
    assert tables["account"]["EntitySetName"] == "accounts"
    assert tables["account"]["PrimaryIdAttribute"] == "accountid"
    assert [k["KeyAttributes"] for k in tables["dvs_orderline"]["Keys"]] == [["dvs_ordernumber", "dvs_linenumber"]]
    assert [k["KeyAttributes"] for k in tables["contact"]["Keys"]] == [["emailaddress1"]]

    single = api.get("EntityDefinitions(LogicalName='task')?$select=EntitySetName,ChangeTrackingEnabled")
    assert single.json()["EntitySetName"] == "tasks"
    assert single.json()["ChangeTrackingEnabled"] is False

    tracked = api.get("EntityDefinitions?$select=LogicalName&$filter=ChangeTrackingEnabled eq true")
    assert {t["LogicalName"] for t in tracked.json()["value"]} == {"account", "contact", "dvs_orderline"}

    attributes = api.get("EntityDefinitions(LogicalName='account')/Attributes").json()["value"]
    name = next(a for a in attributes if a["LogicalName"] == "name")
    assert name["MaxLength"] == 160
    assert name["AttributeType"] == "String"

    missing = api.get("EntityDefinitions(LogicalName='nosuchtable')")
    assert missing.status_code == 404


def test_post_creates_a_row_and_returns_its_url(cloud: Cloud, api: Api) -> None:
    response = api.post("accounts", json={"name": "Contoso", "accountnumber": "A-1"})
    assert response.status_code == 204
    entity_id = response.headers["OData-EntityId"]
    assert entity_id.startswith(f"{api.root}/accounts(")
    record_id = entity_id[entity_id.index("(") + 1 : -1]
    row = cloud.org().row("account", record_id)
    assert row is not None
    assert row["name"] == "Contoso"
    assert row["createdby"] == systemuser_id_for("contoso", SYNC_APP)


def test_return_representation_gives_201_with_the_row(api: Api) -> None:
    response = api.post(
        "accounts?$select=name,accountnumber",
        json={"name": "Contoso", "accountnumber": "A-1"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["@odata.context"] == f"{api.root}/$metadata#accounts(name,accountnumber)/$entity"
    assert body["name"] == "Contoso"
    assert body["@odata.etag"].startswith('W/"')
    assert response.headers["ETag"] == body["@odata.etag"]
    assert set(body) == {"@odata.context", "@odata.etag", "name", "accountnumber", "accountid"}


def test_retrieve_by_id_and_by_alternate_key(api: Api) -> None:
    created = api.post("accounts", json={"name": "Contoso", "accountnumber": "A-1", "numberofemployees": 5})
    url = created.headers["OData-EntityId"]
    by_id = api.get(url + "?$select=name")
    assert by_id.status_code == 200
    assert by_id.json()["name"] == "Contoso"
    by_key = api.get("accounts(accountnumber='A-1')?$select=numberofemployees")
    assert by_key.json()["numberofemployees"] == 5
    # Keys compare case-insensitively, like Dataverse's SQL collation.
    assert api.get("accounts(accountnumber='a-1')").status_code == 200

    missing_id = api.get(f"accounts({GUID_1})")
    assert missing_id.status_code == 404
    assert error_of(missing_id) == {"code": "0x80040217", "message": f"account With Id = {GUID_1} Does Not Exist"}
    missing_key = api.get("accounts(accountnumber='nope')")
    assert missing_key.status_code == 404
    assert error_of(missing_key)["code"] == "0x80060891"


def test_composite_and_named_keys(api: Api) -> None:
    assert (
        api.patch("dvs_orderlines(dvs_ordernumber='SO-1',dvs_linenumber=2)", json={"dvs_product": "Bolt"}).status_code
        == 204
    )
    row = api.get("dvs_orderlines(dvs_linenumber=2,dvs_ordernumber='SO-1')").json()
    assert row["dvs_product"] == "Bolt"
    by_named_id = api.get(f"dvs_orderlines(dvs_orderlineid={row['dvs_orderlineid']})")
    assert by_named_id.status_code == 200

    not_a_key = api.get("accounts(name='Contoso')")
    assert not_a_key.status_code == 400
    assert (
        "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.account'"
        in error_of(not_a_key)["message"]
    )


def test_list_with_select_filter_top_and_quotes(api: Api) -> None:
    for number, name in [("A-1", "Alpha"), ("A-2", "O'Brien"), ("A-3", "Gamma")]:
        api.post("accounts", json={"name": name, "accountnumber": number, "numberofemployees": int(number[-1])})
    names = lambda r: sorted(v["name"] for v in r.json()["value"])  # noqa: E731

    assert names(api.get("accounts?$select=name&$filter=name eq 'O''Brien'")) == ["O'Brien"]
    assert names(api.get("accounts?$select=name&$filter=name ne 'Alpha' and numberofemployees ne 3")) == ["O'Brien"]
    assert names(api.get("accounts?$select=name&$filter=(name eq 'alpha' or name eq 'Gamma')")) == ["Alpha", "Gamma"]
    assert names(api.get("accounts?$select=name&$filter=numberofemployees gt 1&$orderby=name desc")) == [
        "Gamma",
        "O'Brien",
    ]
    assert len(api.get("accounts?$select=name&$top=2").json()["value"]) == 2
    selected = api.get("accounts?$select=name").json()["value"][0]
    assert set(selected) == {"@odata.etag", "name", "accountid"}

    unterminated = api.get("accounts?$filter=" + quote("name eq 'O'Brien'"))
    assert unterminated.status_code == 400
    assert (
        error_of(unterminated)["message"] == "There is an unterminated literal at position 17 in 'name eq 'O'Brien''."
    )
    unknown = api.get("accounts?$select=Name")
    assert unknown.status_code == 400
    assert (
        error_of(unknown)["message"]
        == "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'."
    )
    assert api.get("accounts?$skip=1").status_code == 400


def test_paging_with_maxpagesize_and_next_link(api: Api, cloud: Cloud) -> None:
    cloud.org().seed("account", [{"name": f"Account {i}", "accountnumber": f"P-{i:03}"} for i in range(12)])
    seen: list[str] = []
    url = "accounts?$select=accountnumber"
    pages = 0
    while url:
        response = api.get(url, headers={"Prefer": "odata.maxpagesize=5"})
        assert response.status_code == 200
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=5"
        body = response.json()
        seen += [v["accountnumber"] for v in body["value"]]
        url = body.get("@odata.nextLink", "")
        assert not url or "$skiptoken=%3Ccookie%20pagenumber=" in url
        pages += 1
    assert pages == 3
    assert sorted(seen) == [f"P-{i:03}" for i in range(12)]
    # $top is ignored when maxpagesize is given.
    assert len(api.get("accounts?$top=2", headers={"Prefer": "odata.maxpagesize=5"}).json()["value"]) == 5


def test_patch_upsert_creates_then_updates_both_204(cloud: Cloud, api: Api) -> None:
    first = api.patch("accounts(accountnumber='U-1')", json={"name": "Created"})
    assert first.status_code == 204
    assert first.headers["OData-EntityId"] == f"{api.root}/accounts(accountnumber='U-1')"
    second = api.patch("accounts(accountnumber='U-1')", json={"name": "Updated"})
    assert second.status_code == 204
    assert cloud.org().count("account") == 1
    assert cloud.org().row("account", accountnumber="U-1")["name"] == "Updated"  # type: ignore[index]

    created = api.patch(
        "accounts(accountnumber='U-2')", json={"name": "x"}, headers={"Prefer": "return=representation"}
    )
    updated = api.patch(
        "accounts(accountnumber='U-2')", json={"name": "y"}, headers={"Prefer": "return=representation"}
    )
    assert (created.status_code, updated.status_code) == (201, 200)
    assert updated.json()["name"] == "y"
    assert updated.headers["ETag"] != created.headers["ETag"]


def test_upsert_key_values_in_body(cloud: Cloud, api: Api) -> None:
    # Not existing: body key values win over the URL's; existing: body key values are removed.
    api.patch("accounts(accountnumber='URL-1')", json={"name": "n", "accountnumber": "BODY-1"})
    assert cloud.org().row("account", accountnumber="BODY-1") is not None
    api.patch("accounts(accountnumber='BODY-1')", json={"name": "m", "accountnumber": "CHANGED"})
    assert cloud.org().row("account", accountnumber="BODY-1")["name"] == "m"  # type: ignore[index]
    assert cloud.org().row("account", accountnumber="CHANGED") is None


def test_conditional_upsert_headers(api: Api) -> None:
    update_only = api.patch(f"accounts({GUID_1})", json={"name": "x"}, headers={"If-Match": "*"})
    assert update_only.status_code == 404
    assert error_of(update_only) == {"code": "", "message": f"account With Id = {GUID_1} Does Not Exist"}

    assert api.patch(f"accounts({GUID_1})", json={"name": "x"}, headers={"If-None-Match": "*"}).status_code == 204
    create_only = api.patch(f"accounts({GUID_1})", json={"name": "y"}, headers={"If-None-Match": "*"})
    assert create_only.status_code == 412
    assert error_of(create_only) == {"code": "", "message": "A record with matching key values already exists."}

    etag = api.get(f"accounts({GUID_1})").json()["@odata.etag"]
    assert api.patch(f"accounts({GUID_1})", json={"name": "z"}, headers={"If-Match": etag}).status_code == 204
    stale = api.patch(f"accounts({GUID_1})", json={"name": "w"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert "doesn't match the RowVersion" in error_of(stale)["message"]
    fresh = api.get(f"accounts({GUID_1})").json()["@odata.etag"]
    assert api.get(f"accounts({GUID_1})", headers={"If-None-Match": fresh}).status_code == 304


def test_delete_and_collection_methods(cloud: Cloud, admin_api: Api, api: Api) -> None:
    api.post("accounts", json={"name": "x", "accountnumber": "D-1"})
    assert admin_api.delete("accounts(accountnumber='D-1')").status_code == 204
    assert cloud.org().count("account") == 0
    again = admin_api.delete("accounts(accountnumber='D-1')")
    assert again.status_code == 404
    assert api.patch("accounts", json={}).status_code == 405
    assert api.delete("accounts").status_code == 405


def test_lookup_binds_by_id_and_by_alternate_key(cloud: Cloud, api: Api) -> None:
    account = api.post("accounts", json={"name": "Parent", "accountnumber": "P-1"}).headers["OData-EntityId"]
    account_id = account[account.index("(") + 1 : -1]
    by_key = api.post(
        "contacts",
        json={
            "lastname": "Key",
            "emailaddress1": "k@x.com",
            "parentcustomerid_account@odata.bind": "/accounts(accountnumber='P-1')",
        },
    )
    by_id = api.post(
        "contacts",
        json={
            "lastname": "Id",
            "emailaddress1": "i@x.com",
            "parentcustomerid_account@odata.bind": f"accounts({account_id})",
        },
    )
    absolute = api.post(
        "contacts",
        json={"lastname": "Abs", "emailaddress1": "a@x.com", "parentcustomerid_account@odata.bind": account},
    )
    assert (by_key.status_code, by_id.status_code, absolute.status_code) == (204, 204, 204)
    contacts = cloud.org().rows("contact")
    assert {c["parentcustomerid"] for c in contacts} == {account_id}
    assert {c["fullname"] for c in contacts} == {"Key", "Id", "Abs"}

    missing_id = api.post(
        "contacts", json={"lastname": "x", "parentcustomerid_account@odata.bind": f"accounts({GUID_1})"}
    )
    assert missing_id.status_code == 404
    assert error_of(missing_id) == {"code": "0x80040217", "message": f"account With Ids = {GUID_1} Do Not Exist"}
    missing_key = api.post(
        "contacts", json={"lastname": "x", "parentcustomerid_account@odata.bind": "accounts(accountnumber='none')"}
    )
    assert missing_key.status_code == 404
    assert error_of(missing_key) == {
        "code": "0x80060891",
        "message": "A record with the specified key values does not exist in account entity",
    }
    wrong_navigation = api.post(
        "contacts", json={"lastname": "x", "parentcustomerid@odata.bind": f"accounts({account_id})"}
    )
    assert wrong_navigation.status_code == 400
    assert "An undeclared property 'parentcustomerid'" in error_of(wrong_navigation)["message"]
    assert cloud.org().count("contact") == 3


def test_column_validation_messages(api: Api) -> None:
    unknown = api.post("accounts", json={"Name": "x"})
    assert unknown.status_code == 400
    assert error_of(unknown)["code"] == "0x80048d19"
    assert (
        "Invalid property 'Name' was found in entity 'Microsoft.Dynamics.CRM.account'" in error_of(unknown)["message"]
    )

    too_long = api.post("accounts", json={"name": "x" * 161})
    assert too_long.status_code == 400
    assert error_of(too_long) == {
        "code": "0x80044331",
        "message": "A validation error occurred.  The length of the 'name' attribute of the 'account' entity exceeded "
        "the maximum allowed length of '160'.",
    }
    wrong_type = api.post("accounts", json={"numberofemployees": "many"})
    assert wrong_type.status_code == 400
    assert "Cannot convert the literal 'many' to the expected type 'Edm.Int32'." in error_of(wrong_type)["message"]
    number_for_text = api.post("accounts", json={"name": 5})
    assert "expected type 'Edm.String'" in error_of(number_for_text)["message"]
    bad_choice = api.post("accounts", json={"industrycode": 99})
    assert bad_choice.status_code == 400
    assert "is outside the valid range" in error_of(bad_choice)["message"]
    bad_date = api.post("accounts", json={"lastonholdtime": "yesterday"})
    assert "Edm.DateTimeOffset" in error_of(bad_date)["message"]
    missing_required = api.post("dvs_orderlines", json={"dvs_ordernumber": "SO-1"})
    assert missing_required.status_code == 400
    assert "dvs_linenumber" in error_of(missing_required)["message"]
    not_an_object = api.post("accounts", data=b"[1]", headers={"Content-Type": "application/json"})
    assert not_an_object.status_code == 400


def test_duplicate_alternate_key(cloud: Cloud, api: Api) -> None:
    api.post("accounts", json={"name": "a", "accountnumber": "DUP"})
    duplicate = api.post("accounts", json={"name": "b", "accountnumber": "dup"})
    assert duplicate.status_code == 412
    assert error_of(duplicate)["code"] == "0x80060892"
    assert "DUP" in error_of(duplicate)["message"] or "dup" in error_of(duplicate)["message"]
    assert cloud.org().count("account") == 1


@pytest.mark.parametrize(("value", "status"), [("A&B", 400), ("A:B", 400), ("A*B", 400), ("A%B", 400), ("A+B", 404)])
def test_key_values_with_characters_that_break_key_urls(api: Api, cloud: Cloud, value: str, status: int) -> None:
    cloud.org().seed("account", [{"name": "special", "accountnumber": value}])
    response = api.get("accounts(accountnumber='" + quote(value, safe="") + "')")
    assert response.status_code == status
    # The same row is reachable with $filter, which is what clients fall back to.
    found = api.get("accounts?$select=name&$filter=" + quote(f"accountnumber eq '{value}'", safe=""))
    assert [v["name"] for v in found.json()["value"]] == ["special"]


def test_annotations_on_request(api: Api) -> None:
    api.post("accounts", json={"name": "Parent", "accountnumber": "F-1", "industrycode": 2, "creditonhold": True})
    api.post(
        "contacts", json={"lastname": "Kid", "parentcustomerid_account@odata.bind": "accounts(accountnumber='F-1')"}
    )
    prefer = {"Prefer": 'odata.include-annotations="*"'}
    account = api.get("accounts(accountnumber='F-1')?$select=industrycode,creditonhold", headers=prefer)
    assert account.headers["Preference-Applied"] == 'odata.include-annotations="*"'
    assert account.json()["industrycode@OData.Community.Display.V1.FormattedValue"] == "Agriculture"
    assert account.json()["creditonhold@OData.Community.Display.V1.FormattedValue"] == "Yes"
    kid = api.get("contacts?$select=_parentcustomerid_value", headers=prefer).json()["value"][0]
    assert kid["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert (
        kid["_parentcustomerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == "parentcustomerid_account"
    )
    assert kid["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"] == "Parent"
    plain = api.get("contacts?$select=_parentcustomerid_value").json()["value"][0]
    assert [k for k in plain if "@" in k and k != "@odata.etag"] == []


def test_unknown_entity_set_and_related_collection(api: Api) -> None:
    unknown = api.get("Account")
    assert unknown.status_code == 404
    assert error_of(unknown) == {"code": "0x8006088a", "message": "Resource not found for the segment 'Account'."}
    api.post("accounts", json={"name": "Parent", "accountnumber": "R-1"})
    api.post(
        "tasks", json={"subject": "call", "regardingobjectid_account_task@odata.bind": "accounts(accountnumber='R-1')"}
    )
    related = api.get("accounts(accountnumber='R-1')/Account_Tasks?$select=subject")
    assert related.status_code == 200
    assert related.json()["@odata.context"] == f"{api.root}/$metadata#tasks(subject)"
    assert [t["subject"] for t in related.json()["value"]] == ["call"]


def test_superscript_digits_are_refused_as_bad_syntax(api: Api) -> None:
    """'²' passes str.isdigit() but is no decimal digit: a 400 like any other bad literal, never a 500."""
    key = api.get("accounts(accountnumber=²)")
    assert key.status_code == 400
    assert error_of(key)["message"] == "Syntax error: '²' is not a valid literal."
    top = api.get("accounts?$top=²")
    assert top.status_code == 400
    assert error_of(top)["message"] == "Invalid value '²' for $top query option found."
    assert api.get("accounts", headers={"Prefer": "odata.maxpagesize=²"}).status_code == 200  # ignored, as "abc"
