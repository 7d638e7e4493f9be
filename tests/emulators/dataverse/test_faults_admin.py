"""Issue 4 item 8: injected faults (scripted and by rate, matched by method/path) and the admin API."""

from __future__ import annotations

import time

import pytest
import requests

from emulators.dataverse import FaultRule
from tests.emulators.dataverse.conftest import Api, Cloud, error_of


@pytest.mark.parametrize("status", [503, 502])
def test_scripted_gateway_errors_then_normal_service(cloud: Cloud, api: Api, status: int) -> None:
    cloud.org().add_fault(kind=str(status), count=2)
    first, second, third = (api.get("WhoAmI") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (status, status, 200)
    assert set(error_of(first)) == {"code", "message"}
    assert cloud.org().counters.faults[str(status)] == 2


def test_connection_reset_without_a_response(cloud: Cloud, api: Api) -> None:
    cloud.org().add_fault(kind="reset", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get("WhoAmI")
    assert api.get("WhoAmI").status_code == 200
    assert cloud.org().counters.faults["reset"] == 1


def test_slow_response_and_path_matching(cloud: Cloud, api: Api) -> None:
    cloud.org().add_fault(kind="slow", count=1, delay_seconds=0.3, path=r"/accounts")
    started = time.monotonic()
    assert api.get("WhoAmI").status_code == 200  # does not match the path
    fast = time.monotonic() - started
    started = time.monotonic()
    assert api.get("accounts").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert fast < 0.3


def test_expired_token_fault_and_method_matching(cloud: Cloud, api: Api) -> None:
    cloud.org().add_fault(kind="expired_token", count=1, method="POST")
    assert api.get("WhoAmI").status_code == 200
    response = api.post("accounts", json={"name": "x"})
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert cloud.org().count("account") == 0


def test_injected_429_with_chosen_code(cloud: Cloud, api: Api) -> None:
    cloud.org().add_fault(kind="429", count=1, limit_code="0x80072321", retry_after=7)
    response = api.get("WhoAmI")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert error_of(response)["code"] == "0x80072321"
    assert cloud.org().counters.throttled["0x80072321"] == 1


def test_faults_by_rate(cloud: Cloud, api: Api) -> None:
    cloud.org().add_fault(kind="503", rate=1.0, path="WhoAmI")
    assert all(api.get("WhoAmI").status_code == 503 for _ in range(3))
    assert api.get("accounts").status_code == 200
    cloud.org().clear_faults()
    cloud.org().add_fault(kind="503", rate=0.0)
    assert api.get("WhoAmI").status_code == 200


def test_fault_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="exactly one of count or rate"):
        FaultRule(kind="503")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not a valid FaultKind"):
        FaultRule(kind="418", count=1)  # type: ignore[arg-type]


def test_admin_api_rows_counts_faults_limits_counters(cloud: Cloud, api: Api) -> None:
    orgs = cloud.admin("GET", "/orgs").json()
    assert {o["name"] for o in orgs} == {"contoso", "fabrikam"}
    assert next(o for o in orgs if o["name"] == "contoso")["url"] == cloud.urls["contoso"]

    seeded = cloud.admin(
        "POST", "/orgs/contoso/tables/account/rows", json={"records": [{"name": "A", "accountnumber": "AD-1"}]}
    )
    assert seeded.status_code == 200
    record_id = seeded.json()["ids"][0]
    assert cloud.admin("GET", f"/orgs/contoso/tables/account/rows/{record_id}").json()["name"] == "A"
    assert cloud.admin("GET", "/orgs/contoso/tables/account/find?accountnumber=AD-1").json()["accountid"] == record_id
    assert cloud.admin("GET", "/orgs/contoso/tables/account/rows").json()["count"] == 1
    assert cloud.admin("GET", "/orgs/contoso/counts").json()["account"] == 1
    assert cloud.admin("GET", "/orgs/contoso/tables/nope/rows").status_code == 404
    assert cloud.admin("GET", "/orgs/nope").status_code == 404

    added = cloud.admin("POST", "/orgs/contoso/faults", json={"kind": "503", "count": 1, "path": "WhoAmI"})
    assert added.json()["count"] == 1
    assert len(cloud.admin("GET", "/orgs/contoso/faults").json()) == 1
    assert api.get("WhoAmI").status_code == 503
    assert cloud.admin("POST", "/orgs/contoso/faults", json={"kind": "503"}).status_code == 400
    cloud.admin("POST", "/orgs/contoso/faults", json={"kind": "502", "count": 5})
    assert cloud.admin("DELETE", "/orgs/contoso/faults").status_code == 200
    assert api.get("WhoAmI").status_code == 200

    limits = cloud.admin("PUT", "/orgs/contoso/limits", json={"requests": 1, "window_seconds": 60}).json()
    assert limits["requests"] == 1
    assert api.get("WhoAmI").status_code == 429
    assert cloud.admin("PUT", "/orgs/contoso/limits", json={"bogus": 1}).status_code == 400
    latency = cloud.admin("PUT", "/orgs/contoso/latency", json={"base_ms": 5}).json()
    assert latency["base_ms"] == 5

    counters = cloud.admin("GET", "/orgs/contoso/counters").json()
    assert counters["faults"] == {"503": 1}
    assert counters["throttled"] == {"0x80072322": 1}
    assert counters["requests"]["WhoAmI"] >= 1
    assert cloud.admin("DELETE", "/orgs/contoso/counters").status_code == 200
    assert cloud.admin("GET", "/orgs/contoso/counters").json()["requests_total"] == 0

    assert cloud.admin("POST", "/orgs/contoso/reset", json={"data": True}).status_code == 200
    assert cloud.org().count("account") == 0
    assert cloud.admin("GET", "/api/data/v9.2/WhoAmI").status_code == 404  # the admin port serves no Web API
