"""Issue 4 item 2: bearer token validation, application users, privileges, impersonation, bypass headers."""

from __future__ import annotations

import time

import pytest

from emulators import seed
from emulators.dataverse.security import systemuser_id_for
from emulators.tokens import TokenAuthority
from tests.emulators.dataverse.conftest import (
    BYPASS_APP,
    CONTOSO,
    DELEGATE_APP,
    FABRIKAM,
    NO_PRIVILEGE_APP,
    READ_ONLY_APP,
    READER_OBJECT_ID,
    READER_SYSTEMUSER_ID,
    SYNC_APP,
    TABLE_ONLY_APP,
    UNKNOWN_APP,
    Api,
    Cloud,
    error_of,
)


def unauthorized(cloud: Cloud, token: str) -> None:
    response = cloud.api(token=token).get("WhoAmI")
    assert response.status_code == 401
    assert response.content == b""
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(
        f"Bearer authorization_uri=https://login.microsoftonline.com/{CONTOSO}/oauth2/authorize"
    )
    assert f"resource_id={cloud.urls['contoso']}/" in challenge


def test_missing_or_malformed_token_is_401(cloud: Cloud) -> None:
    unauthorized(cloud, "")
    unauthorized(cloud, "not-a-jwt")


def test_token_signed_by_another_key_is_401(cloud: Cloud) -> None:
    forged = (
        TokenAuthority()
        .issue(tenant_id=CONTOSO, audience=cloud.urls["contoso"], app_id=SYNC_APP, object_id="x")
        .access_token
    )
    unauthorized(cloud, forged)


def test_token_for_another_audience_or_tenant_is_401(cloud: Cloud) -> None:
    unauthorized(cloud, cloud.token(audience=cloud.urls["fabrikam"]))
    unauthorized(cloud, cloud.token(tenant_id=FABRIKAM))


def test_expired_token_is_401(cloud: Cloud) -> None:
    unauthorized(cloud, cloud.token(now=time.time() - 7200, lifetime=3600))


def test_audience_with_trailing_slash_is_accepted(cloud: Cloud) -> None:
    token = cloud.token(audience=cloud.urls["contoso"] + "/")
    assert cloud.api(token=token).get("WhoAmI").status_code == 200


def test_valid_token_without_application_user_is_403(cloud: Cloud) -> None:
    response = cloud.api(app_id=UNKNOWN_APP).get("WhoAmI")
    assert response.status_code == 403
    assert error_of(response)["message"] == "The user is not a member of the organization."


def test_same_app_is_a_different_user_in_each_org(cloud: Cloud) -> None:
    contoso = cloud.api("contoso").get("WhoAmI").json()
    fabrikam = cloud.api("fabrikam").get("WhoAmI").json()
    assert contoso["UserId"] != fabrikam["UserId"]
    assert contoso["OrganizationId"] != fabrikam["OrganizationId"]
    # An app user of contoso only is not a member of fabrikam.
    assert cloud.api("fabrikam", READ_ONLY_APP).get("WhoAmI").status_code == 403


def test_missing_table_privilege_is_403_privilege_denied(cloud: Cloud) -> None:
    nothing = cloud.api(app_id=NO_PRIVILEGE_APP).get("accounts")
    assert nothing.status_code == 403
    assert error_of(nothing)["code"] == "0x80040220"
    assert "prvReadAccount" in error_of(nothing)["message"]
    assert cloud.api(app_id=NO_PRIVILEGE_APP).get("WhoAmI").status_code == 200

    reader = cloud.api(app_id=READ_ONLY_APP)
    assert reader.get("accounts").status_code == 200
    denied = reader.post("accounts", json={"name": "x"})
    assert denied.status_code == 403
    assert "prvCreateAccount" in error_of(denied)["message"]
    assert cloud.org().count("account") == 0


def test_delete_and_append_privileges(cloud: Cloud, api: Api) -> None:
    api.post("accounts", json={"name": "x", "accountnumber": "P-1"})
    denied = cloud.api(app_id=TABLE_ONLY_APP).delete("accounts(accountnumber='P-1')")  # a role without Delete
    assert denied.status_code == 403
    assert "prvDeleteAccount" in error_of(denied)["message"]
    assert api.get("accounts(accountnumber='P-1')").status_code == 200
    api.post("accounts", json={"name": "y", "accountnumber": "P-2"})
    assert api.delete("accounts(accountnumber='P-2')").status_code == 204  # the demo role may delete
    # AppendTo on the target table is needed to bind a lookup to it: the demo role has it.
    ok = api.post(
        "contacts", json={"lastname": "y", "parentcustomerid_account@odata.bind": "accounts(accountnumber='P-1')"}
    )
    assert ok.status_code == 204


def test_impersonation_needs_the_act_on_behalf_privilege(cloud: Cloud, api: Api) -> None:
    as_dana = {"CallerObjectId": seed.CONTOSO_USER_OBJECT_ID}
    response = cloud.api(app_id=TABLE_ONLY_APP).post("accounts", json={"name": "x"}, headers=as_dana)
    assert response.status_code == 403
    assert error_of(response) == {
        "code": "0x8004A110",
        "message": "User does not have the privilege to act on behalf another user.",
    }
    assert cloud.org().count("account") == 0
    assert api.post("accounts", json={"name": "x"}, headers=as_dana).status_code == 204  # the demo role may


def test_impersonation_records_the_real_caller(cloud: Cloud) -> None:
    delegate = cloud.api(app_id=DELEGATE_APP)
    who = delegate.get("WhoAmI", headers={"CallerObjectId": seed.CONTOSO_USER_OBJECT_ID}).json()
    assert who["UserId"] == seed.CONTOSO_USER_SYSTEMUSER_ID
    created = delegate.post(
        "accounts", json={"name": "x", "accountnumber": "I-1"}, headers={"CallerObjectId": seed.CONTOSO_USER_OBJECT_ID}
    )
    assert created.status_code == 204
    row = cloud.org().row("account", accountnumber="I-1")
    assert row is not None
    assert row["createdby"] == seed.CONTOSO_USER_SYSTEMUSER_ID
    assert row["createdonbehalfby"] == systemuser_id_for("contoso", DELEGATE_APP)

    legacy = delegate.get("WhoAmI", headers={"MSCRMCallerID": seed.CONTOSO_USER_SYSTEMUSER_ID}).json()
    assert legacy["UserId"] == seed.CONTOSO_USER_SYSTEMUSER_ID
    stranger = delegate.get("WhoAmI", headers={"CallerObjectId": "0b1ec7ed-0000-4000-8000-00000000dead"})
    assert stranger.status_code == 404


def test_impersonated_privileges_are_the_intersection(cloud: Cloud) -> None:
    delegate = cloud.api(app_id=DELEGATE_APP)
    as_reader = {"CallerObjectId": READER_OBJECT_ID}
    assert delegate.get("accounts", headers=as_reader).status_code == 200
    denied = delegate.post("accounts", json={"name": "x"}, headers=as_reader)
    assert denied.status_code == 403
    assert READER_SYSTEMUSER_ID in error_of(denied)["message"]


@pytest.mark.parametrize(
    ("header", "value", "privilege"),
    [
        ("MSCRM.BypassBusinessLogicExecution", "CustomSync,CustomAsync", "prvBypassCustomBusinessLogic"),
        ("MSCRM.BypassCustomPluginExecution", "true", "prvBypassCustomPlugins"),
    ],
)
def test_bypass_headers_need_their_privilege(cloud: Cloud, api: Api, header: str, value: str, privilege: str) -> None:
    denied = api.post("accounts", json={"name": "x"}, headers={header: value})
    assert denied.status_code == 403
    assert error_of(denied)["code"] == "0x80040220"
    assert privilege in error_of(denied)["message"]
    allowed = cloud.api(app_id=BYPASS_APP).post("accounts", json={"name": "x"}, headers={header: value})
    assert allowed.status_code == 204
