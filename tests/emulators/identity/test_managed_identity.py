"""The App Service managed identity endpoint with the real ManagedIdentityCredential / DefaultAzureCredential."""

from __future__ import annotations

import time

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, DefaultAzureCredential, ManagedIdentityCredential

from emulators import seed
from emulators.cloud import LocalCloud
from tests.emulators.identity.helpers import claims_of

VAULT_SCOPE = "https://vault.azure.net/.default"


@pytest.mark.usefixtures("identity_environment")
def test_managed_identity_credential_gets_a_key_vault_token() -> None:
    with ManagedIdentityCredential(client_id=seed.MANAGED_IDENTITY_CLIENT_ID) as credential:
        token = credential.get_token(VAULT_SCOPE)

    claims = claims_of(token.token)
    assert claims["aud"] == "https://vault.azure.net"
    assert claims["oid"] == seed.MANAGED_IDENTITY_OBJECT_ID
    assert claims["appid"] == seed.MANAGED_IDENTITY_CLIENT_ID
    assert claims["tid"] == seed.HOME_TENANT_ID
    assert claims["xms_mirid"].endswith("/userAssignedIdentities/dvsync-func-identity")
    assert 3500 < token.expires_on - time.time() <= 3600


@pytest.mark.usefixtures("identity_environment")
def test_default_azure_credential_uses_the_managed_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """In Azure the app uses DefaultAzureCredential + AZURE_CLIENT_ID; the same code path works locally."""
    monkeypatch.setenv("AZURE_CLIENT_ID", seed.MANAGED_IDENTITY_CLIENT_ID)
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_TOKEN_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    with DefaultAzureCredential() as credential:
        token = credential.get_token(VAULT_SCOPE)
    assert claims_of(token.token)["oid"] == seed.MANAGED_IDENTITY_OBJECT_ID


@pytest.mark.usefixtures("identity_environment")
def test_identity_not_assigned_to_the_app_is_refused() -> None:
    with (
        ManagedIdentityCredential(client_id="0bad0bad-0000-4000-8000-000000000000") as credential,
        pytest.raises((ClientAuthenticationError, CredentialUnavailableError), match="No User Assigned"),
    ):
        credential.get_token(VAULT_SCOPE)


def test_wrong_identity_header_is_refused(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", cloud.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-platform-header")
    with (
        ManagedIdentityCredential(client_id=seed.MANAGED_IDENTITY_CLIENT_ID) as credential,
        pytest.raises((ClientAuthenticationError, CredentialUnavailableError), match="401"),
    ):
        credential.get_token(VAULT_SCOPE)


def _raw(cloud: LocalCloud, **params: str) -> requests.Response:
    return requests.get(
        cloud.identity_endpoint,
        params={"api-version": "2019-08-01", "resource": "https://vault.azure.net", **params},
        headers={"X-IDENTITY-HEADER": cloud.identity_header},
        timeout=5,
    )


@pytest.mark.parametrize(
    "selector",
    [
        {"client_id": seed.OTHER_IDENTITY_CLIENT_ID},
        {"principal_id": seed.OTHER_IDENTITY_OBJECT_ID},
        {"object_id": seed.OTHER_IDENTITY_OBJECT_ID},
        {
            "mi_res_id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/dataverse-sync"
            "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dvsync-other-identity"
        },
    ],
    ids=["client_id", "principal_id", "object_id", "mi_res_id"],
)
def test_every_documented_selector_picks_the_identity(cloud: LocalCloud, selector: dict[str, str]) -> None:
    response = _raw(cloud, **selector)
    body = response.json()
    assert response.status_code == 200
    assert body["client_id"] == seed.OTHER_IDENTITY_CLIENT_ID
    assert body["resource"] == "https://vault.azure.net"
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_on"], str)
    assert claims_of(body["access_token"])["oid"] == seed.OTHER_IDENTITY_OBJECT_ID


def test_request_errors(cloud: LocalCloud) -> None:
    two_selectors = _raw(cloud, client_id=seed.OTHER_IDENTITY_CLIENT_ID, object_id=seed.OTHER_IDENTITY_OBJECT_ID)
    assert two_selectors.status_code == 400
    assert two_selectors.json()["statusCode"] == 400
    assert _raw(cloud).status_code == 400  # no system-assigned identity on this app
    old_api = requests.get(
        cloud.identity_endpoint,
        params={"api-version": "2017-09-01", "resource": "https://vault.azure.net"},
        headers={"X-IDENTITY-HEADER": cloud.identity_header},
        timeout=5,
    )
    assert old_api.status_code == 400
