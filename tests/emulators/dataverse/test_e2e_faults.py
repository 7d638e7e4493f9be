"""Faults added for the end-to-end tests: a gateway outage announcing its length with Retry-After (RFC 9110
§10.2.3; without `retry_after` none is sent), and a connection reset after the request was executed."""

from __future__ import annotations

import pytest
import requests

from tests.emulators.dataverse.conftest import Api, Cloud


@pytest.mark.parametrize("status", [503, 502])
def test_a_gateway_outage_can_announce_its_length(cloud: Cloud, api: Api, status: int) -> None:
    cloud.org().add_fault(kind=str(status), count=1, retry_after=30)
    cloud.org().add_fault(kind=str(status), count=1)
    announced, plain = api.get("WhoAmI"), api.get("WhoAmI")
    assert (announced.status_code, announced.headers.get("Retry-After")) == (status, "30")
    assert (plain.status_code, plain.headers.get("Retry-After")) == (status, None)
    assert api.get("WhoAmI").status_code == 200


def test_an_injected_429_still_defaults_to_one_second(cloud: Cloud, api: Api) -> None:
    cloud.org().add_fault(kind="429", count=1)
    assert api.get("WhoAmI").headers["Retry-After"] == "1"


def test_reset_after_processing_commits_the_write_and_loses_the_response(cloud: Cloud, api: Api) -> None:
    cloud.org().add_fault(kind="reset_after", count=1, method="POST")
    with pytest.raises(requests.ConnectionError):
        api.post("accounts", json={"name": "committed, never answered"})
    assert [row["name"] for row in cloud.org().rows("account")] == ["committed, never answered"]
    assert cloud.org().counters.faults["reset_after"] == 1
    assert api.post("accounts", json={"name": "answered"}).status_code == 204
