"""Fixtures: one local cloud per session (Entra ID, managed identity, Key Vault over real HTTPS), built by the same
code as `make cloud`, plus an operator identity that may write secrets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import http_challenge_cache

from emulators import seed
from emulators.cloud import LocalCloud
from tests.emulators.identity import helpers

OPERATOR_CLIENT_ID = "0be7a707-0000-4000-8000-0000000e0001"
OPERATOR_OBJECT_ID = "0be7a707-0000-4000-8000-0000000e0002"
OPERATOR_SECRET = "local-operator-secret-value"  # an emulated credential, not a real secret


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Identity and Key Vault only: Azurite and Dataverse have their own tests (test_cloud.py starts all)."""
    with LocalCloud(
        Path(tmp_path_factory.mktemp("identity-cloud")), with_azurite=False, with_dataverse=False
    ) as running:
        running.directory.register_app(
            OPERATOR_CLIENT_ID,
            home_tenant_id=seed.HOME_TENANT_ID,
            display_name="vault operator",
            home_object_id=OPERATOR_OBJECT_ID,
        )
        running.directory.add_client_secret(OPERATOR_CLIENT_ID, OPERATOR_SECRET)
        running.keyvault.roles.assign(OPERATOR_OBJECT_ID, "Key Vault Secrets Officer")
        yield running


@pytest.fixture(autouse=True)
def fresh_challenge_cache() -> None:
    """The Key Vault challenge cache is process-wide; each test starts without it (local-emulation.md §5)."""
    http_challenge_cache.clear()


@pytest.fixture
def identity_environment(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """What App Service / Functions sets in the app's environment for its managed identity."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", cloud.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", cloud.identity_header)
    for name in (
        "IDENTITY_SERVER_THUMBPRINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IMDS_ENDPOINT",
        "AZURE_FEDERATED_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def operator_client(cloud: LocalCloud) -> Iterator[SecretClient]:
    """A SecretClient of an identity with "Key Vault Secrets Officer" (set, list, get)."""
    credential = helpers.secret_credential(cloud, seed.HOME_TENANT_ID, OPERATOR_CLIENT_ID, OPERATOR_SECRET)
    with helpers.secret_client(cloud, credential) as client:
        yield client
