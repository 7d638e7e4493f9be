"""The local cloud: Entra ID, the managed identity endpoint, Key Vault, the Dataverse orgs and Azurite, seeded.

    with LocalCloud(Path(".local-cloud")) as cloud:
        os.environ.update(cloud.app_settings())     # what the Function App needs to reach it
        cloud.keyvault.secrets.set("other", "...")  # seeding handles: directory, keyvault, dataverse

One `ServerGroup` (one event loop, one thread) hosts every HTTP emulator; Azurite is its own process, started in
parallel. `python -m emulators.cloud` (`make cloud`) runs it in the foreground: it prefers the ports of
local.settings.sample.json so that `func start` with those settings works, writes `.local-cloud/cloud.json`
(format: docs/local-cloud.md) and stops on Ctrl+C or SIGTERM. Tests use free ports only.

Seeded from emulators/seed.py: the ISV's home tenant, customer tenants Contoso and Fabrikam (consented to the
multi-tenant Dataverse app) and one tenant that never consented; the app registration with a fresh RSA-2048
self-signed certificate (1 year), registered by thumbprint and stored in Key Vault as certificate
`seed.CERTIFICATE_NAME` (PFX); the Function App's user-assigned managed identity with "Key Vault Secrets User",
and a second identity assigned to the app without any Key Vault role.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

from emulators import seed
from emulators.azurite import DEVELOPMENT_STORAGE_QUEUE_PORT, Azurite
from emulators.dataverse import DataverseEmulator, add_demo_orgs
from emulators.entra import (
    ClientCertificate,
    Directory,
    EntraEmulator,
    ManagedIdentityEndpoint,
    create_certificate,
    pooled_rsa_key,
)
from emulators.entra.managed_identity import TOKEN_PATH
from emulators.keyvault import KEYVAULT_RESOURCE, KeyVaultEmulator
from emulators.servers import ServerGroup
from emulators.tls import LocalCA
from emulators.tokens import TokenAuthority

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SETTINGS = ROOT / "local.settings.sample.json"
DEFAULT_STATE_DIR = ROOT / ".local-cloud"
CLOUD_JSON_VERSION = 1

TENANT_NAMES = {
    seed.HOME_TENANT_ID: ("Dataverse Sync ISV", "dvsyncisv.onmicrosoft.com"),
    seed.CONTOSO_TENANT_ID: ("Contoso", "contoso.onmicrosoft.com"),
    seed.FABRIKAM_TENANT_ID: ("Fabrikam", "fabrikam.onmicrosoft.com"),
    seed.NO_CONSENT_TENANT_ID: ("Northwind Traders", "northwindtraders.onmicrosoft.com"),
}
MANAGED_IDENTITY_NAME = "dvsync-func-identity"
OTHER_IDENTITY_NAME = "dvsync-other-identity"
FUNCTION_APP_ROLE = "Key Vault Secrets User"


def sample_values() -> dict[str, str]:
    data: dict[str, Any] = json.loads(SAMPLE_SETTINGS.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data["Values"].items()}


def _port_of(url: str) -> int:
    return urllib.parse.urlsplit(url).port or 0


def sample_ports() -> dict[str, int]:
    """The fixed ports local.settings.sample.json names (entra, managed-identity, keyvault, one per org)."""
    values = sample_values()
    ports = {
        "entra": _port_of(values["DATAVERSE_AUTHORITY_HOST"]),
        "managed-identity": _port_of(values["IDENTITY_ENDPOINT"]),
        "keyvault": _port_of(values["KEYVAULT_URL"]),
    }
    for name, environment in json.loads(values["DATAVERSE_ENVIRONMENTS"]).items():
        ports[f"dataverse-{name}"] = _port_of(environment["url"])
    return ports


class LocalCloud:
    """See the module docstring. Attributes are set by `start()`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        with_azurite: bool = True,
        with_dataverse: bool = True,
        prefer_sample_ports: bool = False,
        identity_header: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.with_azurite = with_azurite
        self.with_dataverse = with_dataverse
        self.preferred_ports = sample_ports() if prefer_sample_ports else {}
        # IDENTITY_HEADER guards the identity endpoint against SSRF; the platform rotates it. A fresh one per cloud.
        self.identity_header = identity_header or uuid.uuid4().hex
        self.startup_seconds = 0.0
        self.azurite: Azurite | None = None
        self._dataverse: DataverseEmulator | None = None
        self.org_urls: dict[str, str] = {}
        self.dataverse_admin_url: str | None = None
        self._group: ServerGroup | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        started = time.perf_counter()
        azurite_thread, azurite_failure = self._start_azurite_in_background()
        try:
            self.ca = LocalCA.create(self.state_dir)
            self.authority = TokenAuthority()
            self.directory = self._seed_directory()
            self.app_certificate = create_certificate(
                "dataverse-sync", valid_days=365, key=pooled_rsa_key("dataverse-sync app registration")
            )
            self.directory.add_certificate(seed.DATAVERSE_APP_CLIENT_ID, self.app_certificate.certificate)
            self._group = ServerGroup(self.ca)
            self._host_identity_services()
            self._host_keyvault()
            self._host_dataverse()
            self._group.start()
            if azurite_thread is not None:
                azurite_thread.join()
                if azurite_failure:
                    raise azurite_failure[0]
        except BaseException:
            if azurite_thread is not None:
                azurite_thread.join()
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        self.started_at = dt.datetime.now(dt.UTC)
        return self

    def stop(self) -> None:
        if self._group is not None:
            self._group.stop()
            self._group = None
        if self.azurite is not None:
            self.azurite.stop()
            self.azurite = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def rotate_app_certificate(self, *, valid_days: int = 365, retire_previous: bool = False) -> ClientCertificate:
        """Rotate the app registration's certificate the way an operator does: register a new certificate, store it
        as the new current version of the Key Vault certificate, and (optionally) remove the old one from the app
        registration, after which assertions signed with it fail with AADSTS700027."""
        previous = self.app_certificate
        self.app_certificate = create_certificate(
            "dataverse-sync", valid_days=valid_days, key=pooled_rsa_key(f"dataverse-sync rotation {uuid.uuid4()}")
        )
        self.directory.add_certificate(seed.DATAVERSE_APP_CLIENT_ID, self.app_certificate.certificate)
        self.keyvault.secrets.import_certificate(seed.CERTIFICATE_NAME, self.app_certificate)
        if retire_previous:
            self.directory.remove_certificate(seed.DATAVERSE_APP_CLIENT_ID, previous.thumbprint_hex)
        return self.app_certificate

    @property
    def dataverse(self) -> DataverseEmulator:
        """The in-process handle of the Dataverse orgs (rows, counters, faults, limits)."""
        if self._dataverse is None:
            raise RuntimeError("this local cloud was started without the Dataverse emulator")
        return self._dataverse

    # --- what the app needs --------------------------------------------------------------------------------------

    @property
    def azurite_connection_string(self) -> str | None:
        return self.azurite.connection_string if self.azurite else None

    def app_settings(self) -> dict[str, str]:
        """Every app setting whose value comes from this cloud (endpoints, CA, seeded identities), as strings.

        Layer it over local.settings.sample.json (or the process environment): together they pass
        `shared.config.Settings.from_environ`.
        """
        settings = {
            "AZURE_CLIENT_ID": seed.MANAGED_IDENTITY_CLIENT_ID,
            "KEYVAULT_URL": self.keyvault_url,
            # The SDK checks that the challenge's resource matches the vault's domain; 127.0.0.1 is no vault domain.
            "KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false",
            "DATAVERSE_CLIENT_ID": seed.DATAVERSE_APP_CLIENT_ID,
            "DATAVERSE_CERT_NAME": seed.CERTIFICATE_NAME,
            "DATAVERSE_AUTHORITY_HOST": self.entra_url,
            "DATAVERSE_ENVIRONMENTS": json.dumps(self._environments()),
            "LOCAL_CLOUD_CA_BUNDLE": str(self.ca.ca_bundle.resolve()),
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
        }
        if self.azurite is not None:
            settings["AzureWebJobsStorage"] = self.azurite.connection_string
            settings["SYNC_STORAGE"] = self.azurite.connection_string
        return settings

    def describe(self) -> dict[str, Any]:
        """cloud.json's content (docs/local-cloud.md). No private key or secret value is in it."""
        return {
            "version": CLOUD_JSON_VERSION,
            "started_at": self.started_at.isoformat(),
            "startup_seconds": round(self.startup_seconds, 3),
            "ca_bundle": str(self.ca.ca_bundle.resolve()),
            "endpoints": {
                "entra": self.entra_url,
                "managed_identity": self.identity_endpoint,
                "keyvault": self.keyvault_url,
                "azurite_queue": self.azurite_queue_url,
                "dataverse": dict(self.org_urls),
                "dataverse_admin": self.dataverse_admin_url,
            },
            "identity_header": self.identity_header,
            "directory": self.directory.describe(),
            "keyvault": {
                "url": self.keyvault_url,
                "tenant_id": self.keyvault.tenant_id,
                "certificate": {
                    "name": seed.CERTIFICATE_NAME,
                    "content_type": "application/x-pkcs12",
                    "thumbprint_sha1": self.app_certificate.thumbprint_hex,
                    "not_after": self.app_certificate.not_after.isoformat(),
                },
                "role_assignments": [
                    {"principal_id": a.principal_id, "role": a.role, "secret": a.secret}
                    for principal in (seed.MANAGED_IDENTITY_OBJECT_ID, seed.OTHER_IDENTITY_OBJECT_ID)
                    for a in self.keyvault.roles.roles_of(principal)
                ],
            },
            "app_settings": self.app_settings(),
        }

    def write_json(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")
        return path

    @property
    def azurite_queue_url(self) -> str | None:
        return self.azurite.queue_url if self.azurite else None

    # --- building blocks ------------------------------------------------------------------------------------------

    def _start_azurite_in_background(self) -> tuple[threading.Thread | None, list[BaseException]]:
        """Azurite takes ~0.6 s to listen: start it while the emulators start."""
        if not self.with_azurite:
            return None, []
        failure: list[BaseException] = []
        # With the sample's ports, Azurite takes 10001, which `UseDevelopmentStorage=true` points at.
        azurite = Azurite(preferred_port=DEVELOPMENT_STORAGE_QUEUE_PORT if self.preferred_ports else None)
        self.azurite = azurite

        def run() -> None:
            try:
                azurite.start()
            except BaseException as exc:  # handed to the starting thread
                failure.append(exc)

        thread = threading.Thread(target=run, name="azurite-start", daemon=True)
        thread.start()
        return thread, failure

    def _seed_directory(self) -> Directory:
        directory = Directory()
        for tenant_id, (name, domain) in TENANT_NAMES.items():
            directory.add_tenant(tenant_id, name, domain)
        directory.register_app(
            seed.DATAVERSE_APP_CLIENT_ID,
            home_tenant_id=seed.HOME_TENANT_ID,
            display_name="dataverse-sync",
            multi_tenant=True,
            home_object_id=seed.DATAVERSE_APP_OBJECT_IDS[seed.HOME_TENANT_ID],
        )
        for tenant_id, object_id in seed.DATAVERSE_APP_OBJECT_IDS.items():
            if tenant_id != seed.HOME_TENANT_ID:
                directory.consent(seed.DATAVERSE_APP_CLIENT_ID, tenant_id, object_id=object_id)
        directory.add_managed_identity(
            seed.MANAGED_IDENTITY_CLIENT_ID,
            seed.MANAGED_IDENTITY_OBJECT_ID,
            tenant_id=seed.HOME_TENANT_ID,
            name=MANAGED_IDENTITY_NAME,
        )
        directory.add_managed_identity(
            seed.OTHER_IDENTITY_CLIENT_ID,
            seed.OTHER_IDENTITY_OBJECT_ID,
            tenant_id=seed.HOME_TENANT_ID,
            name=OTHER_IDENTITY_NAME,
        )
        directory.add_resource(KEYVAULT_RESOURCE)
        return directory

    def _add_server(self, name: str, app: Any, *, tls: bool = True) -> str:
        assert self._group is not None
        return self._group.add(name, app, tls=tls, port=self.preferred_ports.get(name, 0))

    def _host_identity_services(self) -> None:
        self.entra = EntraEmulator(self.directory, self.authority)
        self.entra_url = self._add_server("entra", self.entra.app())
        self.managed_identity = ManagedIdentityEndpoint(
            self.directory, self.authority, identity_header=self.identity_header
        )
        for client_id in (seed.MANAGED_IDENTITY_CLIENT_ID, seed.OTHER_IDENTITY_CLIENT_ID):
            identity = self.directory.managed_identity(client_id=client_id)
            assert identity is not None
            self.managed_identity.assign(identity)
        # Plain http on loopback, like the platform's endpoint (azure-identity reads IDENTITY_ENDPOINT as given).
        self.identity_endpoint = (
            self._add_server("managed-identity", self.managed_identity.app(), tls=False) + TOKEN_PATH
        )

    def _host_keyvault(self) -> None:
        self.keyvault = KeyVaultEmulator(self.authority, tenant_id=seed.HOME_TENANT_ID)
        self.keyvault_url = self._add_server("keyvault", self.keyvault.app())
        self.keyvault.url = self.keyvault_url
        self.keyvault.authority_host = self.entra_url
        self.keyvault.secrets.import_certificate(seed.CERTIFICATE_NAME, self.app_certificate)
        self.keyvault.roles.assign(seed.MANAGED_IDENTITY_OBJECT_ID, FUNCTION_APP_ROLE)

    def _host_dataverse(self) -> None:
        """The Dataverse orgs of seed.ORGS with the demo application user (emulators.dataverse.demo), each on its own
        origin, plus the emulator's admin API."""
        if not self.with_dataverse:
            return
        dataverse = self._dataverse = DataverseEmulator(self.authority, authority_host=self.entra_url)
        add_demo_orgs(dataverse)
        for name in seed.ORGS:
            url = self._add_server(f"dataverse-{name}", dataverse.org_app(name))
            dataverse.set_org_url(name, url)
            self.directory.add_resource(url)
            self.org_urls[name] = url
        self.dataverse_admin_url = self._add_server("dataverse-admin", dataverse.admin_app())

    def _environments(self) -> dict[str, Any]:
        """DATAVERSE_ENVIRONMENTS for every seeded org, with the sample's table configuration."""
        sample = json.loads(sample_values()["DATAVERSE_ENVIRONMENTS"])
        template = next(iter(sample.values()))
        environments: dict[str, Any] = {}
        for name, tenant_id in seed.ORGS.items():
            # Without the Dataverse emulator: the sample's URL, or a reserved name that never resolves (RFC 2606).
            fallback = sample.get(name, {}).get("url") or f"https://{name}.dataverse.invalid"
            environments[name] = {**template, "url": self.org_urls.get(name, fallback), "tenant_id": tenant_id}
        return environments


# --- `python -m emulators.cloud` ---------------------------------------------------------------------------------


def _summary(cloud: LocalCloud, json_path: Path) -> str:
    lines = [
        f"local cloud started in {cloud.startup_seconds:.2f} s; details in {json_path}",
        f"  Entra ID          {cloud.entra_url}",
        f"  managed identity  {cloud.identity_endpoint}",
        f"  Key Vault         {cloud.keyvault_url}",
        f"  Azurite (queues)  {cloud.azurite_queue_url or '-'}",
        *(f"  {'Dataverse ' + name:<18}{url}" for name, url in cloud.org_urls.items()),
        f"  CA bundle         {cloud.ca.ca_bundle}",
        "Ctrl+C stops it.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.cloud", description="Run the local cloud.")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--no-azurite", action="store_true", help="do not start Azurite")
    parser.add_argument("--no-dataverse", action="store_true", help="do not start the Dataverse orgs")
    parser.add_argument("--free-ports", action="store_true", help="ignore the ports of local.settings.sample.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    cloud = LocalCloud(
        args.state_dir,
        with_azurite=not args.no_azurite,
        with_dataverse=not args.no_dataverse,
        prefer_sample_ports=not args.free_ports,
        # The sample's IDENTITY_HEADER, so that local.settings.sample.json works unchanged against fixed ports.
        identity_header=None if args.free_ports else sample_values()["IDENTITY_HEADER"],
    )
    with cloud:
        json_path = cloud.write_json(args.state_dir / "cloud.json")
        print(_summary(cloud, json_path), flush=True)
        while not stop.wait(0.5):
            pass
    print("local cloud stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
