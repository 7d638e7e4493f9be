"""The Key Vault emulator with the real SecretClient: challenge, RBAC, certificates as secrets, versions, states."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from cryptography.hazmat.primitives.serialization import pkcs12

from emulators import seed
from emulators.cloud import LocalCloud
from emulators.entra import create_certificate, pooled_rsa_key
from emulators.entra.certificates import PEM_CONTENT_TYPE
from tests.emulators.identity import helpers
from tests.emulators.identity.conftest import OPERATOR_CLIENT_ID, OPERATOR_SECRET
from tests.emulators.identity.helpers import claims_of

pytestmark = pytest.mark.usefixtures("identity_environment")


def _client(cloud: LocalCloud, client_id: str) -> SecretClient:
    return helpers.secret_client(cloud, ManagedIdentityCredential(client_id=client_id))


@pytest.fixture
def app_client(cloud: LocalCloud) -> Iterator[SecretClient]:
    """The Function App's view: its managed identity, which has "Key Vault Secrets User"."""
    with _client(cloud, seed.MANAGED_IDENTITY_CLIENT_ID) as client:
        yield client


def _operator_token(cloud: LocalCloud) -> str:
    """A vault token of the "Key Vault Secrets Officer" operator, for raw requests."""
    credential = helpers.secret_credential(cloud, seed.HOME_TENANT_ID, OPERATOR_CLIENT_ID, OPERATOR_SECRET)
    return credential.get_token("https://vault.azure.net/.default").token


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_get_secret_returns_the_certificate_and_it_authenticates_to_dataverse(
    cloud: LocalCloud, app_client: SecretClient
) -> None:
    secret = app_client.get_secret(seed.CERTIFICATE_NAME)

    assert secret.properties.content_type == "application/x-pkcs12"
    assert secret.properties.managed is True
    assert secret.properties.key_id == f"{cloud.keyvault_url}/keys/{seed.CERTIFICATE_NAME}/{secret.properties.version}"
    assert len(secret.properties.version or "") == 32
    assert secret.properties.expires_on is not None
    pfx = base64.b64decode(secret.value or "")
    _key, certificate, _chain = pkcs12.load_key_and_certificates(pfx, None)
    assert certificate is not None
    assert certificate.not_valid_after_utc == secret.properties.expires_on

    for tenant in (seed.CONTOSO_TENANT_ID, seed.FABRIKAM_TENANT_ID):
        credential = helpers.certificate_credential(cloud, tenant, seed.DATAVERSE_APP_CLIENT_ID, certificate_data=pfx)
        claims = claims_of(credential.get_token("https://contoso.crm.dynamics.com/.default").token)
        assert claims["aud"] == "https://contoso.crm.dynamics.com"
        assert claims["oid"] == seed.DATAVERSE_APP_OBJECT_IDS[tenant]


def test_the_challenge_is_answered_once_per_vault(
    cloud: LocalCloud, app_client: SecretClient, capsys: pytest.CaptureFixture[str]
) -> None:
    before = cloud.keyvault.stats["challenge"]
    app_client.get_secret(seed.CERTIFICATE_NAME)
    started = time.perf_counter()
    for _ in range(20):
        app_client.get_secret(seed.CERTIFICATE_NAME)
    warm_ms = (time.perf_counter() - started) / 20 * 1000
    assert cloud.keyvault.stats["challenge"] - before == 1
    with capsys.disabled():
        print(f"\n[measure] warm SecretClient.get_secret over HTTPS: {warm_ms:.1f} ms per call")


def test_challenge_names_the_tenant_and_resource(cloud: LocalCloud) -> None:
    response = requests.get(
        f"{cloud.keyvault_url}/secrets/{seed.CERTIFICATE_NAME}/",
        params={"api-version": "2026-04-01"},
        verify=helpers.ca(cloud),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{cloud.entra_url}/{seed.HOME_TENANT_ID}", resource="https://vault.azure.net"'
    )
    assert response.json() == {
        "error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}
    }


def test_identity_without_a_role_gets_403(cloud: LocalCloud) -> None:
    with _client(cloud, seed.OTHER_IDENTITY_CLIENT_ID) as client, pytest.raises(HttpResponseError) as refused:
        client.get_secret(seed.CERTIFICATE_NAME)
    error = refused.value
    assert error.status_code == 403
    assert error.error is not None
    assert error.error.code == "Forbidden"
    assert "Caller is not authorized to perform action on resource." in str(error.message)
    assert f"oid={seed.OTHER_IDENTITY_OBJECT_ID}" in str(error.message)
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in str(error.message)
    assert "ForbiddenByRbac" in str(error)


def test_secrets_user_may_not_set_secrets(app_client: SecretClient) -> None:
    with pytest.raises(HttpResponseError) as refused:
        app_client.set_secret(_unique("not-allowed"), "value")
    assert refused.value.status_code == 403
    assert "setSecret/action" in str(refused.value.message)


def test_missing_secret_is_resource_not_found(app_client: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        app_client.get_secret("no-such-secret")
    assert missing.value.error is not None
    assert missing.value.error.code == "SecretNotFound"
    assert "A secret with (name/id) no-such-secret was not found in this key vault." in str(missing.value.message)


def test_rotation_new_version_becomes_current(operator_client: SecretClient, app_client: SecretClient) -> None:
    name = _unique("rotated")
    first = operator_client.set_secret(name, "first value", content_type="text/plain", tags={"purpose": "test"})
    second = operator_client.set_secret(name, "second value")

    current = app_client.get_secret(name)
    assert (current.value, current.properties.version) == ("second value", second.properties.version)
    pinned = app_client.get_secret(name, first.properties.version)
    assert pinned.value == "first value"
    assert pinned.properties.content_type == "text/plain"
    assert pinned.properties.tags == {"purpose": "test"}
    versions = {v.version for v in app_client.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    assert all(v is not None and len(v) == 32 and int(v, 16) >= 0 for v in versions)


def test_listing_pages_through_next_link(operator_client: SecretClient) -> None:
    names = {_unique("listed") for _ in range(3)}
    for name in names:
        operator_client.set_secret(name, "v")
    listed = {p.name for p in operator_client.list_properties_of_secrets(max_page_size=1)}
    assert names <= listed
    assert seed.CERTIFICATE_NAME in listed


def test_disabled_secret_is_forbidden(operator_client: SecretClient, app_client: SecretClient) -> None:
    name = _unique("disabled")
    operator_client.set_secret(name, "old")
    newest = operator_client.set_secret(name, "new")
    operator_client.update_secret_properties(name, newest.properties.version, enabled=False)

    with pytest.raises(HttpResponseError) as refused:
        app_client.get_secret(name)
    assert refused.value.status_code == 403
    assert refused.value.error is not None
    assert refused.value.error.code == "Forbidden"
    assert "Operation get is not allowed on a disabled secret." in str(refused.value.message)
    assert "SecretDisabled" in str(refused.value)


def test_expired_and_not_yet_valid_secrets_are_still_returned(
    operator_client: SecretClient, app_client: SecretClient
) -> None:
    """Key Vault does not enforce exp/nbf on reads (Azure/AzureKeyVault#19); the app must check them itself."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expired, future = _unique("expired"), _unique("future")
    operator_client.set_secret(expired, "v", expires_on=now - dt.timedelta(days=1))
    operator_client.set_secret(future, "v", not_before=now + dt.timedelta(days=1))

    assert app_client.get_secret(expired).properties.expires_on == now - dt.timedelta(days=1)
    assert app_client.get_secret(future).properties.not_before == now + dt.timedelta(days=1)


def test_certificate_stored_as_pem(cloud: LocalCloud, app_client: SecretClient) -> None:
    name = _unique("pem-cert")
    certificate = create_certificate("pem stored", key=pooled_rsa_key("tests: pem"))
    cloud.keyvault.secrets.import_certificate(name, certificate, content_type=PEM_CONTENT_TYPE)

    secret = app_client.get_secret(name)
    assert secret.properties.content_type == PEM_CONTENT_TYPE
    assert "-----BEGIN PRIVATE KEY-----" in (secret.value or "")
    as_pfx = app_client.get_secret(name, out_content_type="application/x-pkcs12")
    _key, loaded, _chain = pkcs12.load_key_and_certificates(base64.b64decode(as_pfx.value or ""), None)
    assert loaded == certificate.certificate


def test_certificate_stored_as_pfx_is_read_as_pem(cloud: LocalCloud, app_client: SecretClient) -> None:
    as_pem = app_client.get_secret(seed.CERTIFICATE_NAME, out_content_type=PEM_CONTENT_TYPE)
    assert as_pem.properties.content_type == PEM_CONTENT_TYPE
    assert (as_pem.value or "").encode() == cloud.app_certificate.pem()


def test_requests_without_api_version_are_refused(cloud: LocalCloud) -> None:
    token = ManagedIdentityCredential(client_id=seed.MANAGED_IDENTITY_CLIENT_ID).get_token(
        "https://vault.azure.net/.default"
    )
    response = requests.get(
        f"{cloud.keyvault_url}/secrets/{seed.CERTIFICATE_NAME}/",
        headers={"Authorization": f"Bearer {token.token}"},
        verify=helpers.ca(cloud),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadParameter"


@pytest.mark.parametrize(
    ("tenant", "scope", "expected"),
    [
        (seed.HOME_TENANT_ID, "https://contoso.crm.dynamics.com/.default", "AKV10022: Invalid audience."),
        (seed.CONTOSO_TENANT_ID, "https://vault.azure.net/.default", "AKV10032: Invalid issuer."),
    ],
    ids=["dataverse-token", "other-tenant"],
)
def test_tokens_for_another_resource_or_tenant_are_401(
    cloud: LocalCloud, tenant: str, scope: str, expected: str
) -> None:
    token = helpers.certificate_credential(
        cloud, tenant, seed.DATAVERSE_APP_CLIENT_ID, certificate_data=cloud.app_certificate.pem()
    ).get_token(scope)
    response = requests.get(
        f"{cloud.keyvault_url}/secrets/{seed.CERTIFICATE_NAME}/",
        params={"api-version": "2026-04-01"},
        headers={"Authorization": f"Bearer {token.token}"},
        verify=helpers.ca(cloud),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith(expected)
    assert token.token not in response.text


def test_sdk_with_token_for_another_tenant_fails_to_authenticate(cloud: LocalCloud) -> None:
    """A credential bound to another tenant refuses the vault's challenge (local-emulation.md §5)."""
    credential = helpers.certificate_credential(
        cloud, seed.CONTOSO_TENANT_ID, seed.DATAVERSE_APP_CLIENT_ID, certificate_data=cloud.app_certificate.pem()
    )
    with (
        helpers.secret_client(cloud, credential) as client,
        pytest.raises(ClientAuthenticationError, match="not configured to acquire tokens for tenant"),
    ):
        client.get_secret(seed.CERTIFICATE_NAME)


def test_invalid_secret_name_is_bad_parameter(app_client: SecretClient) -> None:
    with pytest.raises(HttpResponseError) as refused:
        app_client.get_secret("not_a_valid_name")
    assert refused.value.status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == "BadParameter"
    assert "The request URI contains an invalid name: not_a_valid_name" in str(refused.value.message)


@pytest.mark.parametrize(
    "body",
    [{"contentType": "text/plain"}, {"value": "v", "tags": {"n": 1}}, {"value": "v", "attributes": {"exp": "soon"}}],
    ids=["no-value", "non-string-tag", "non-numeric-exp"],
)
def test_invalid_set_requests_are_bad_parameter(cloud: LocalCloud, body: dict[str, object]) -> None:
    token = _operator_token(cloud)
    response = requests.put(
        f"{cloud.keyvault_url}/secrets/{_unique('invalid')}",
        params={"api-version": "2026-04-01"},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=helpers.ca(cloud),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadParameter"


def test_role_scoped_to_one_secret_and_revoked(cloud: LocalCloud, operator_client: SecretClient) -> None:
    allowed, other = _unique("scoped"), _unique("unscoped")
    operator_client.set_secret(allowed, "a")
    operator_client.set_secret(other, "b")
    cloud.keyvault.roles.assign(seed.OTHER_IDENTITY_OBJECT_ID, "Key Vault Secrets User", secret=allowed)
    try:
        with _client(cloud, seed.OTHER_IDENTITY_CLIENT_ID) as client:
            assert client.get_secret(allowed).value == "a"
            with pytest.raises(HttpResponseError) as refused:
                client.get_secret(other)
            assert refused.value.status_code == 403
    finally:
        cloud.keyvault.roles.revoke(seed.OTHER_IDENTITY_OBJECT_ID, "Key Vault Secrets User", secret=allowed)
    with _client(cloud, seed.OTHER_IDENTITY_CLIENT_ID) as client, pytest.raises(HttpResponseError) as revoked:
        client.get_secret(allowed)
    assert revoked.value.status_code == 403


def test_maxresults_with_a_superscript_digit_is_bad_parameter(cloud: LocalCloud) -> None:
    """'²' passes str.isdigit() but int() refuses it: a 400 like any other invalid maxresults, never a 500."""
    token = _operator_token(cloud)
    response = requests.get(
        f"{cloud.keyvault_url}/secrets",
        params={"api-version": "2026-04-01", "maxresults": "²"},
        headers={"Authorization": f"Bearer {token}"},
        verify=helpers.ca(cloud),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "BadParameter", "message": "maxresults must be between 1 and 25."}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_body_that_is_not_utf8_is_bad_parameter(cloud: LocalCloud, method: str) -> None:
    token = _operator_token(cloud)
    response = requests.request(
        method,
        f"{cloud.keyvault_url}/secrets/{_unique('not-utf8')}" + ("/" if method == "PATCH" else ""),
        params={"api-version": "2026-04-01"},
        data=b'{"value": "\xff"}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        verify=helpers.ca(cloud),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "BadParameter", "message": "The request body is not valid JSON."}
