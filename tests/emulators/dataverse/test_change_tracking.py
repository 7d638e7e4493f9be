"""Issue 4 item 6: change tracking with delta links (PAD/use-change-tracking-synchronize-data-external-systems.md)."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from tests.emulators.dataverse.conftest import Api, Cloud, error_of

TRACK = {"Prefer": "odata.track-changes"}


def initial(api: Api, query: str = "accounts?$select=name,accountnumber") -> dict:  # type: ignore[type-arg]
    response = api.get(query, headers=TRACK)
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "odata.track-changes"
    return response.json()  # type: ignore[no-any-return]


def test_initial_sync_then_changes_and_deletions(cloud: Cloud, api: Api, admin_api: Api) -> None:
    cloud.org().seed("account", [{"name": n, "accountnumber": n} for n in ("keep", "change", "drop")])
    first = initial(api)
    assert {v["name"] for v in first["value"]} == {"keep", "change", "drop"}
    delta_link = first["@odata.deltaLink"]
    token = unquote(re.search(r"\$deltatoken=([^&]+)", delta_link).group(1))  # type: ignore[union-attr]
    assert re.fullmatch(r"\d+!\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}", token)
    assert delta_link.startswith(f"{api.root}/accounts?$select=name,accountnumber&$deltatoken=")

    api.patch("accounts(accountnumber='change')", json={"name": "changed"})
    api.post("accounts", json={"name": "new", "accountnumber": "new"})
    dropped = cloud.org().row("account", accountnumber="drop")
    assert admin_api.delete("accounts(accountnumber='drop')").status_code == 204
    temporary = api.post("accounts", json={"name": "temp"}).headers["OData-EntityId"]
    admin_api.delete(temporary)

    changes = api.get(delta_link).json()
    assert changes["@odata.context"] == f"{api.root}/$metadata#accounts(name,accountnumber)/$delta"
    rows = [v for v in changes["value"] if "@odata.etag" in v]
    deletions = [v for v in changes["value"] if "reason" in v]
    assert [r["name"] for r in rows] == ["changed", "new"]  # by version
    assert changes["value"][: len(rows)] == rows  # new/changed rows come before deletions
    assert deletions[0] == {
        "@odata.context": f"{api.root}/$metadata#accounts/$deletedEntity",
        "id": dropped["accountid"],  # type: ignore[index]
        "reason": "deleted",
    }
    assert len(deletions) == 2  # created and deleted between syncs still yields a deletion

    count = api.get("accounts/$count?" + delta_link.split("?", 1)[1].split("&", 1)[1])
    assert count.text == "4"
    quiet = api.get(changes["@odata.deltaLink"]).json()
    assert quiet["value"] == []


@pytest.mark.parametrize("option", ["$filter=name eq 'x'", "$orderby=name", "$top=1", "$expand=Keys"])
def test_query_options_are_rejected_with_track_changes(api: Api, option: str) -> None:
    response = api.get(f"accounts?$select=name&{option}", headers=TRACK)
    assert response.status_code == 400
    name = option.split("=", maxsplit=1)[0][1:]
    assert (
        error_of(response)["message"]
        == f'The \\"${name}\\" query parameter isn\'t supported when Change Tracking is enabled.'
    )


def test_paging_returns_the_delta_link_only_on_the_last_page(cloud: Cloud, api: Api) -> None:
    cloud.org().seed("account", [{"name": f"a{i}", "accountnumber": f"N{i:02}"} for i in range(7)])
    url, names, pages = "accounts?$select=name", [], 0
    headers = {"Prefer": "odata.track-changes,odata.maxpagesize=3"}
    while True:
        body = api.get(url, headers=headers).json()
        names += [v["name"] for v in body["value"]]
        pages += 1
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        delta = body["@odata.deltaLink"]
        break
    assert pages == 3
    assert sorted(names) == [f"a{i}" for i in range(7)]
    api.post("accounts", json={"name": "late"})
    assert [v["name"] for v in api.get(delta).json()["value"]] == ["late"]


def test_expired_token_and_table_without_change_tracking(cloud: Cloud, api: Api) -> None:
    delta = initial(api)["@odata.deltaLink"]
    cloud.admin("POST", "/orgs/contoso/change-tracking/expire")
    expired = api.get(delta)
    assert expired.status_code == 400
    assert error_of(expired) == {
        "code": "0x80044352",
        "message": "Version stamp associated with the client has expired. Please perform a full sync.",
    }
    fresh = initial(api)["@odata.deltaLink"]
    assert api.get(fresh).status_code == 200

    tasks = api.get("tasks?$select=subject", headers=TRACK)
    assert tasks.status_code == 200
    assert "@odata.deltaLink" not in tasks.json()
    assert "Preference-Applied" not in tasks.headers
