"""LocalCloud as a whole: start time, app settings the app accepts, cloud.json, ports, `python -m emulators.cloud`."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.storage.queue import QueueClient
from cryptography.hazmat.primitives.serialization import pkcs12

from emulators import seed
from emulators.cloud import ROOT, LocalCloud
from emulators.net import free_port
from emulators.servers import ServerGroup
from shared.config.settings import Settings
from tests.emulators.identity import helpers


@pytest.fixture(scope="module")
def full_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Everything: Entra ID, managed identity, Key Vault, Azurite and the Dataverse orgs."""
    with LocalCloud(Path(tmp_path_factory.mktemp("full-cloud"))) as running:
        yield running


@pytest.fixture
def app_vault(full_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretClient]:
    """The Function App's view of the vault: its managed identity, found through the platform's environment."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", full_cloud.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", full_cloud.identity_header)
    credential = ManagedIdentityCredential(client_id=seed.MANAGED_IDENTITY_CLIENT_ID)
    with helpers.secret_client(full_cloud, credential) as vault:
        yield vault


def test_starts_quickly_with_everything(full_cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\n[measure] LocalCloud (with Azurite) started in {full_cloud.startup_seconds:.2f} s")
    assert full_cloud.azurite_connection_string is not None
    queue = QueueClient.from_connection_string(full_cloud.azurite_connection_string, "cloud-smoke")
    with queue:
        queue.create_queue()
        queue.send_message("hello")
        assert [m.content for m in queue.receive_messages()] == ["hello"]


def test_app_settings_pass_the_apps_validation(full_cloud: LocalCloud) -> None:
    settings = Settings.from_environ(full_cloud.app_settings())

    assert settings.keyvault_url == full_cloud.keyvault_url
    assert settings.authority_host == full_cloud.entra_url
    assert settings.ca_bundle == str(full_cloud.ca.ca_bundle.resolve())
    assert settings.keyvault_verify_challenge_resource is False
    assert settings.managed_identity_client_id == seed.MANAGED_IDENTITY_CLIENT_ID
    assert settings.dataverse_client_id == seed.DATAVERSE_APP_CLIENT_ID
    assert settings.certificate_name == seed.CERTIFICATE_NAME
    assert {name: env.tenant_id for name, env in settings.environments.items()} == seed.ORGS
    assert settings.queue_connection.connection_string == full_cloud.azurite_connection_string
    assert {name: env.url for name, env in settings.environments.items()} == full_cloud.org_urls


def test_app_settings_layered_over_the_sample_pass_too(full_cloud: LocalCloud) -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    Settings.from_environ({**sample, **full_cloud.app_settings()})


def test_cloud_json(full_cloud: LocalCloud, tmp_path: Path) -> None:
    path = full_cloud.write_json(tmp_path / "cloud.json")
    text = path.read_text()
    data = json.loads(text)

    assert data["version"] == 1
    assert data["endpoints"]["entra"] == full_cloud.entra_url
    assert data["endpoints"]["keyvault"] == full_cloud.keyvault_url
    assert data["endpoints"]["managed_identity"] == full_cloud.identity_endpoint
    assert data["endpoints"]["azurite_queue"].startswith("http://127.0.0.1:")
    assert Path(data["ca_bundle"]).is_file()
    assert data["app_settings"] == full_cloud.app_settings()
    tenants = {t["id"] for t in data["directory"]["tenants"]}
    assert tenants == {seed.HOME_TENANT_ID, seed.CONTOSO_TENANT_ID, seed.FABRIKAM_TENANT_ID, seed.NO_CONSENT_TENANT_ID}
    (app,) = data["directory"]["app_registrations"]
    assert app["service_principals"] == seed.DATAVERSE_APP_OBJECT_IDS
    assert app["certificates"][0]["thumbprint_sha1"] == full_cloud.app_certificate.thumbprint_hex
    assert {"principal_id": seed.MANAGED_IDENTITY_OBJECT_ID, "role": "Key Vault Secrets User", "secret": None} in (
        data["keyvault"]["role_assignments"]
    )
    certificate_secret = full_cloud.keyvault.secrets.get(seed.CERTIFICATE_NAME)
    assert certificate_secret is not None
    assert certificate_secret.value not in text
    assert "PRIVATE KEY" not in text


def test_server_group_prefers_a_free_port_and_falls_back_when_taken() -> None:
    async def app(scope: object, receive: object, send: object) -> None:  # never called
        raise AssertionError

    wanted = free_port()
    with socket.socket() as occupier:
        occupier.bind(("127.0.0.1", 0))
        occupier.listen()
        taken = occupier.getsockname()[1]
        group = ServerGroup(None)
        assert group.add("free", app, port=wanted) == f"http://127.0.0.1:{wanted}"
        assert group.add("busy", app, port=taken) != f"http://127.0.0.1:{taken}"
        group.stop()


def test_command_line_runs_until_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators.cloud", "--state-dir", str(state), "--no-azurite", "--free-ports"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while not (state / "cloud.json").exists():
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "cloud.json was not written"
            time.sleep(0.05)
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=15)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "local cloud started in" in output
    assert "local cloud stopped" in output
    data = json.loads((state / "cloud.json").read_text())
    assert data["endpoints"]["azurite_queue"] is None


def test_s2s_chain_end_to_end(full_cloud: LocalCloud, app_vault: SecretClient) -> None:
    """Managed identity -> Key Vault certificate -> a token per customer tenant -> WhoAmI in that tenant's org."""
    pfx = base64.b64decode(app_vault.get_secret(seed.CERTIFICATE_NAME).value or "")

    tokens = {}
    for org, tenant in seed.ORGS.items():
        url = full_cloud.org_urls[org]
        credential = helpers.certificate_credential(
            full_cloud, tenant, seed.DATAVERSE_APP_CLIENT_ID, certificate_data=pfx
        )
        tokens[org] = credential.get_token(f"{url}/.default").token
        who = requests.get(
            f"{url}/api/data/v9.2/WhoAmI",
            headers={"Authorization": f"Bearer {tokens[org]}"},
            verify=helpers.ca(full_cloud),
            timeout=10,
        )
        assert who.status_code == 200, who.text
        app_user = full_cloud.dataverse.org(org).app_users[seed.DATAVERSE_APP_CLIENT_ID]
        assert who.json()["UserId"] == app_user.systemuser_id

    contoso, fabrikam = (full_cloud.org_urls[org] for org in ("contoso", "fabrikam"))
    cross_tenant = requests.get(
        f"{contoso}/api/data/v9.2/WhoAmI",
        headers={"Authorization": f"Bearer {tokens['fabrikam']}"},
        verify=helpers.ca(full_cloud),
        timeout=10,
    )
    assert cross_tenant.status_code == 401, f"a token for {fabrikam} must not open {contoso}"


def test_certificate_rotation(full_cloud: LocalCloud, app_vault: SecretClient) -> None:
    """New version in Key Vault becomes current; once retired, the old certificate is refused (AADSTS700027)."""
    previous = full_cloud.app_certificate
    current = full_cloud.rotate_app_certificate(retire_previous=True)

    pfx = base64.b64decode(app_vault.get_secret(seed.CERTIFICATE_NAME).value or "")
    assert len(list(app_vault.list_properties_of_secret_versions(seed.CERTIFICATE_NAME))) == 2
    assert pkcs12.load_key_and_certificates(pfx, None)[1] == current.certificate

    scope = "https://contoso.crm.dynamics.com/.default"
    tenant, app = seed.CONTOSO_TENANT_ID, seed.DATAVERSE_APP_CLIENT_ID
    assert helpers.certificate_credential(full_cloud, tenant, app, certificate_data=pfx).get_token(scope).token
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        helpers.certificate_credential(full_cloud, tenant, app, certificate_data=previous.pem()).get_token(scope)
