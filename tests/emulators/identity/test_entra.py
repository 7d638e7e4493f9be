"""The Entra ID emulator with the real azure-identity credentials and MSAL: discovery, certificate and secret
client credentials, multi-tenant consent, and Entra-shaped failures (checked by `error_codes`)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from cryptography.hazmat.primitives import serialization

from emulators import seed
from emulators.cloud import LocalCloud
from emulators.entra import create_certificate, pooled_rsa_key
from tests.emulators.identity import helpers
from tests.emulators.identity.helpers import claims_of, client_assertion, msal_token, token_endpoint

APP = seed.DATAVERSE_APP_CLIENT_ID
CONTOSO = seed.CONTOSO_TENANT_ID
ORG_SCOPE = "https://contoso.crm.dynamics.com/.default"


@pytest.fixture(scope="module")
def stranger_certificate():
    """A certificate nobody registered."""
    return create_certificate("not-registered", key=pooled_rsa_key("tests: stranger"))


def test_discovery_document_has_what_msal_reads(cloud: LocalCloud) -> None:
    response = requests.get(
        f"{cloud.entra_url}/{CONTOSO}/v2.0/.well-known/openid-configuration", verify=helpers.ca(cloud), timeout=5
    )
    document = response.json()
    assert response.status_code == 200
    assert document["token_endpoint"] == token_endpoint(cloud, CONTOSO)
    assert document["authorization_endpoint"] == f"{cloud.entra_url}/{CONTOSO}/oauth2/v2.0/authorize"
    assert document["jwks_uri"] == f"{cloud.entra_url}/{CONTOSO}/discovery/v2.0/keys"
    assert document["issuer"] == f"{cloud.entra_url}/{CONTOSO}/v2.0"


def test_tenant_domain_resolves_to_the_tenant_id(cloud: LocalCloud) -> None:
    response = requests.get(
        f"{cloud.entra_url}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        verify=helpers.ca(cloud),
        timeout=5,
    )
    assert response.json()["token_endpoint"] == token_endpoint(cloud, CONTOSO)


def test_unknown_tenant_is_aadsts90002(cloud: LocalCloud) -> None:
    unknown = str(uuid.uuid4())
    response = requests.get(
        f"{cloud.entra_url}/{unknown}/v2.0/.well-known/openid-configuration", verify=helpers.ca(cloud), timeout=5
    )
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith(f"AADSTS90002: Tenant '{unknown}' not found.")
    for field in ("timestamp", "trace_id", "correlation_id", "error_uri"):
        assert body[field]
    # MSAL turns the failed discovery into its own message (msal/authority.py tenant_discovery).
    with pytest.raises(ClientAuthenticationError, match="Unable to get authority configuration"):
        helpers.certificate_credential(cloud, unknown, APP, certificate_data=cloud.app_certificate.pem()).get_token(
            ORG_SCOPE
        )


@pytest.mark.parametrize("form", ["pem", "pfx", "pfx-with-password"])
def test_certificate_credential_gets_a_token(cloud: LocalCloud, form: str) -> None:
    certificate = cloud.app_certificate
    data = {
        "pem": certificate.pem(),
        "pfx": certificate.pfx(),
        "pfx-with-password": certificate.pfx(b"local-pfx-password"),
    }[form]
    password = "local-pfx-password" if form == "pfx-with-password" else None
    credential = helpers.certificate_credential(cloud, CONTOSO, APP, certificate_data=data, password=password)

    token = credential.get_token(ORG_SCOPE)

    claims = claims_of(token.token)
    assert claims["aud"] == "https://contoso.crm.dynamics.com"
    assert claims["tid"] == CONTOSO
    assert claims["iss"] == f"https://sts.windows.net/{CONTOSO}/"
    assert claims["oid"] == seed.DATAVERSE_APP_OBJECT_IDS[CONTOSO]
    assert claims["appid"] == APP
    assert claims["appidacr"] == "2"
    assert 3590 <= token.expires_on - time.time() <= 3600


def test_each_consented_tenant_has_its_own_service_principal(cloud: LocalCloud) -> None:
    object_ids = {}
    for tenant in (seed.CONTOSO_TENANT_ID, seed.FABRIKAM_TENANT_ID, seed.HOME_TENANT_ID):
        credential = helpers.certificate_credential(cloud, tenant, APP, certificate_data=cloud.app_certificate.pem())
        object_ids[tenant] = claims_of(credential.get_token(ORG_SCOPE).token)["oid"]
    assert object_ids == seed.DATAVERSE_APP_OBJECT_IDS


def test_certificate_chain_is_accepted(cloud: LocalCloud) -> None:
    """send_certificate_chain=True puts `x5c` (leaf first) in the assertion header (subject name + issuer auth)."""
    issuer = create_certificate("dataverse-sync test CA", key=pooled_rsa_key("tests: ca"), is_ca=True)
    leaf = create_certificate("dataverse-sync chained", key=pooled_rsa_key("tests: leaf"), issuer=issuer)
    cloud.directory.add_certificate(APP, leaf.certificate)
    try:
        credential = helpers.certificate_credential(
            cloud, CONTOSO, APP, certificate_data=leaf.pem(), send_certificate_chain=True
        )
        assert claims_of(credential.get_token(ORG_SCOPE).token)["appid"] == APP
    finally:
        cloud.directory.remove_certificate(APP, leaf.thumbprint_hex)


def test_pss_assertion_with_sha256_thumbprint_is_accepted(cloud: LocalCloud) -> None:
    """The documented assertion form: PS256 with `x5t#S256`."""
    assertion = client_assertion(
        cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO), alg="PS256", thumbprint_header="x5t#S256"
    )
    token = helpers.assertion_credential(cloud, CONTOSO, APP, assertion).get_token(ORG_SCOPE)
    assert claims_of(token.token)["tid"] == CONTOSO


def test_wrong_certificate_is_aadsts700027(cloud: LocalCloud, stranger_certificate) -> None:
    credential = helpers.certificate_credential(cloud, CONTOSO, APP, certificate_data=stranger_certificate.pem())
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        credential.get_token(ORG_SCOPE)

    key = stranger_certificate.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    result = msal_token(
        cloud,
        CONTOSO,
        APP,
        {"private_key": key.decode(), "thumbprint": stranger_certificate.thumbprint_hex},
        ORG_SCOPE,
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]
    assert "The key was not found." in result["error_description"]
    assert stranger_certificate.thumbprint_hex in result["error_description"]


def test_assertion_signed_by_another_key_is_aadsts700027(cloud: LocalCloud, stranger_certificate) -> None:
    """The header names the registered certificate, but the signature is not its key's."""
    assertion = client_assertion(
        cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO), signing_key=stranger_certificate.private_key
    )
    result = msal_token(cloud, CONTOSO, APP, {"client_assertion": assertion}, ORG_SCOPE)
    assert result["error_codes"] == [700027]
    assert "did not match the expected signature value" in result["error_description"]


def test_x5c_leaf_must_match_the_thumbprint(cloud: LocalCloud, stranger_certificate) -> None:
    der = stranger_certificate.certificate.public_bytes(serialization.Encoding.DER)
    assertion = client_assertion(
        cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO), x5c=[base64.b64encode(der).decode()]
    )
    result = msal_token(cloud, CONTOSO, APP, {"client_assertion": assertion}, ORG_SCOPE)
    assert result["error_codes"] == [700027]


def test_unknown_client_is_aadsts700016(cloud: LocalCloud) -> None:
    unknown_client = str(uuid.uuid4())
    credential = helpers.certificate_credential(
        cloud, CONTOSO, unknown_client, certificate_data=cloud.app_certificate.pem()
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        credential.get_token(ORG_SCOPE)

    assertion = client_assertion(cloud.app_certificate, unknown_client, token_endpoint(cloud, CONTOSO))
    result = msal_token(cloud, CONTOSO, unknown_client, {"client_assertion": assertion}, ORG_SCOPE)
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]
    assert (
        f"Application with identifier '{unknown_client}' was not found in the directory 'Contoso'"
        in (result["error_description"])
    )


def test_tenant_without_consent_is_aadsts700016(cloud: LocalCloud) -> None:
    tenant = seed.NO_CONSENT_TENANT_ID
    credential = helpers.certificate_credential(cloud, tenant, APP, certificate_data=cloud.app_certificate.pem())
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        credential.get_token(ORG_SCOPE)

    assertion = client_assertion(cloud.app_certificate, APP, token_endpoint(cloud, tenant))
    result = msal_token(cloud, tenant, APP, {"client_assertion": assertion}, ORG_SCOPE)
    assert result["error_codes"] == [700016]
    assert "was not found in the directory 'Northwind Traders'" in result["error_description"]


def test_expired_assertion_is_aadsts700024(cloud: LocalCloud) -> None:
    an_hour_ago = time.time() - 3600
    assertion = client_assertion(cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO), issued_at=an_hour_ago)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700024"):
        helpers.assertion_credential(cloud, CONTOSO, APP, assertion).get_token(ORG_SCOPE)

    result = msal_token(cloud, CONTOSO, APP, {"client_assertion": assertion}, ORG_SCOPE)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700024]
    assert "Client assertion is not within its valid time range." in result["error_description"]


def test_replayed_assertion_is_rejected(cloud: LocalCloud) -> None:
    assertion = client_assertion(cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO))
    first = helpers.assertion_credential(cloud, CONTOSO, APP, assertion).get_token(ORG_SCOPE)
    assert claims_of(first.token)["appid"] == APP

    with pytest.raises(ClientAuthenticationError, match="AADSTS50013"):
        helpers.assertion_credential(cloud, CONTOSO, APP, assertion).get_token(ORG_SCOPE)
    result = msal_token(cloud, CONTOSO, APP, {"client_assertion": assertion}, ORG_SCOPE)
    assert result["error_codes"] == [50013]
    assert "already used" in result["error_description"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"aud": "https://login.microsoftonline.com/common/oauth2/v2.0/token"}, 50027),
        ({"sub": "someone-else"}, 50048),
        ({"iss": seed.OTHER_IDENTITY_CLIENT_ID, "sub": seed.OTHER_IDENTITY_CLIENT_ID}, 700021),
        ({"nbf": time.time() + 3600}, 700024),
    ],
    ids=["wrong-audience", "subject-not-issuer", "issuer-not-client", "not-yet-valid"],
)
def test_assertion_claims_are_checked(cloud: LocalCloud, change: dict[str, Any], code: int) -> None:
    assertion = client_assertion(cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO), **change)
    result = msal_token(cloud, CONTOSO, APP, {"client_assertion": assertion}, ORG_SCOPE)
    assert result["error_codes"] == [code]


def test_assertion_with_unpadded_x5t_is_accepted(cloud: LocalCloud) -> None:
    assertion = client_assertion(cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO), padded_x5t=False)
    result = msal_token(cloud, CONTOSO, APP, {"client_assertion": assertion}, ORG_SCOPE)
    assert "access_token" in result


def test_expired_registered_certificate_is_refused(cloud: LocalCloud) -> None:
    last_year = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    old = create_certificate("expired", key=pooled_rsa_key("tests: expired"), valid_days=30, not_before=last_year)
    cloud.directory.add_certificate(APP, old.certificate)
    try:
        assertion = client_assertion(old, APP, token_endpoint(cloud, CONTOSO))
        result = msal_token(cloud, CONTOSO, APP, {"client_assertion": assertion}, ORG_SCOPE)
        assert result["error_codes"] == [700027]
        assert "expired" in result["error_description"]
    finally:
        cloud.directory.remove_certificate(APP, old.thumbprint_hex)


def test_client_secret_credential(cloud: LocalCloud) -> None:
    client_id = str(uuid.uuid4())
    cloud.directory.register_app(client_id, home_tenant_id=CONTOSO, display_name="secret app")
    cloud.directory.add_client_secret(client_id, "the-right-secret")

    token = helpers.secret_credential(cloud, CONTOSO, client_id, "the-right-secret").get_token(ORG_SCOPE)
    assert claims_of(token.token)["appidacr"] == "1"

    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215") as refused:
        helpers.secret_credential(cloud, CONTOSO, client_id, "a-wrong-secret").get_token(ORG_SCOPE)
    assert "a-wrong-secret" not in str(refused.value)
    result = msal_token(cloud, CONTOSO, client_id, "a-wrong-secret", ORG_SCOPE)
    assert result["error_codes"] == [7000215]


def test_expired_client_secret_is_aadsts7000222(cloud: LocalCloud) -> None:
    client_id = str(uuid.uuid4())
    cloud.directory.register_app(client_id, home_tenant_id=CONTOSO, display_name="old secret app")
    cloud.directory.add_client_secret(
        client_id, "old-secret", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    )
    result = msal_token(cloud, CONTOSO, client_id, "old-secret", ORG_SCOPE)
    assert result["error_codes"] == [7000222]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"grant_type": "client_credentials", "client_id": APP, "scope": ORG_SCOPE}, 7000218),
        ({"grant_type": "password", "client_id": APP, "scope": ORG_SCOPE}, 70003),
        ({"grant_type": "client_credentials", "client_id": APP, "client_secret": "x"}, 900144),
        (
            {
                "grant_type": "client_credentials",
                "client_id": APP,
                "scope": "https://contoso.crm.dynamics.com/user_impersonation",
            },
            1002012,
        ),
    ],
    ids=["no-credential", "unsupported-grant", "no-scope", "scope-without-default"],
)
def test_malformed_token_requests(cloud: LocalCloud, form: dict[str, str], code: int) -> None:
    response = requests.post(token_endpoint(cloud, CONTOSO), data=form, verify=helpers.ca(cloud), timeout=5)
    assert response.status_code == 400
    assert response.json()["error_codes"] == [code]


def test_correlation_id_is_echoed(cloud: LocalCloud) -> None:
    correlation = str(uuid.uuid4())
    response = requests.post(
        token_endpoint(cloud, CONTOSO),
        data={"grant_type": "client_credentials"},
        headers={"client-request-id": correlation},
        verify=helpers.ca(cloud),
        timeout=5,
    )
    body = response.json()
    assert body["correlation_id"] == correlation
    assert f"Correlation ID: {correlation}" in body["error_description"]


def test_strict_resource_registry_is_aadsts500011(cloud: LocalCloud) -> None:
    cloud.directory.strict_resources = True
    try:
        assertion = client_assertion(cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO))
        result = msal_token(cloud, CONTOSO, APP, {"client_assertion": assertion}, "https://unknown.example/.default")
        assert result["error_codes"] == [500011]
        vault = client_assertion(cloud.app_certificate, APP, token_endpoint(cloud, CONTOSO))
        assert "access_token" in msal_token(
            cloud, CONTOSO, APP, {"client_assertion": vault}, "https://vault.azure.net/.default"
        )
    finally:
        cloud.directory.strict_resources = False


def test_a_new_credential_repeats_discovery_and_token_request(cloud: LocalCloud) -> None:
    """What makes one module-level credential per tenant worthwhile (local-emulation.md §4)."""
    before = dict(cloud.entra.stats)
    credential = helpers.certificate_credential(cloud, CONTOSO, APP, certificate_data=cloud.app_certificate.pem())
    credential.get_token(ORG_SCOPE)
    credential.get_token(ORG_SCOPE)
    assert cloud.entra.stats["discovery"] - before.get("discovery", 0) == 1
    assert cloud.entra.stats["token"] - before.get("token", 0) == 1


def test_client_secret_in_basic_authorization_header(cloud: LocalCloud) -> None:
    """client_secret_basic (RFC 6749 §2.3.1), which the discovery document advertises."""
    client_id = str(uuid.uuid4())
    cloud.directory.register_app(client_id, home_tenant_id=CONTOSO, display_name="basic auth app")
    cloud.directory.add_client_secret(client_id, "basic-secret")
    response = requests.post(
        token_endpoint(cloud, CONTOSO),
        data={"grant_type": "client_credentials", "scope": ORG_SCOPE},
        auth=(client_id, "basic-secret"),
        verify=helpers.ca(cloud),
        timeout=5,
    )
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["appid"] == client_id


def test_directory_description_never_contains_client_secrets(cloud: LocalCloud) -> None:
    client_id = str(uuid.uuid4())
    cloud.directory.register_app(client_id, home_tenant_id=CONTOSO, display_name="described app")
    cloud.directory.add_client_secret(client_id, "described-secret-value")
    text = json.dumps(cloud.describe())
    assert "described-secret-value" not in text
    assert '"hint": "des"' in text


def test_revoked_consent_ends_token_issuance(cloud: LocalCloud) -> None:
    client_id = str(uuid.uuid4())
    cloud.directory.register_app(
        client_id, home_tenant_id=seed.HOME_TENANT_ID, display_name="revoked", multi_tenant=True
    )
    cloud.directory.add_client_secret(client_id, "revoked-app-secret")
    cloud.directory.consent(client_id, CONTOSO)
    assert "access_token" in msal_token(cloud, CONTOSO, client_id, "revoked-app-secret", ORG_SCOPE)

    cloud.directory.revoke_consent(client_id, CONTOSO)
    assert msal_token(cloud, CONTOSO, client_id, "revoked-app-secret", ORG_SCOPE)["error_codes"] == [700016]
