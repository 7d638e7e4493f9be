"""DataverseCredentials logic with a fake certificate store and a fake CertificateCredential (the real ones run
against the local cloud in tests/client/integration)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

import shared.identity.credentials as credentials_module
from shared.identity.certificate import PFX_CONTENT_TYPE, ClientCertificate, load_certificate_secret
from shared.identity.credentials import DataverseCredentials, TokenUnavailable, needs_instance_discovery_disabled
from shared.identity.keyvault import CertificateUnavailable
from tests.client.certificates import make_certificate

TENANT_A = "c0471050-0000-4000-8000-00000000c001"
TENANT_B = "fab71ca0-0000-4000-8000-00000000f001"
ORG = "https://contoso.crm.dynamics.com"


@dataclass
class FakeStore:
    certificates: list[ClientCertificate]
    failing: bool = False
    loads: int = 0
    version_checks: int = 0

    def latest_version(self) -> str | None:
        self.version_checks += 1
        if self.failing:
            raise CertificateUnavailable("Key Vault https://kv: cannot read certificate secret 'c': timeout")
        return self.certificates[-1].version

    def load(self) -> ClientCertificate:
        self.loads += 1
        if self.failing:
            raise CertificateUnavailable("Key Vault https://kv: cannot read certificate secret 'c': timeout")
        return self.certificates[-1]


@dataclass
class FakeCredential:
    tenant_id: str
    client_id: str
    kwargs: dict[str, Any]
    rejected_thumbprints: set[str] = field(default_factory=set)
    calls: int = 0

    def get_token(self, scope: str) -> AccessToken:
        self.calls += 1
        certificate = self.kwargs["certificate"]
        if certificate.thumbprint in self.rejected_thumbprints:
            raise ClientAuthenticationError(
                "Authentication failed: AADSTS700027: Client assertion contains an invalid signature. "
                f"Thumbprint of key used by client: '{certificate.thumbprint}'"
            )
        return AccessToken(f"token-{self.tenant_id}-{scope}-{certificate.version}", 2_000_000_000)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def built(monkeypatch):
    """Replace CertificateCredential; record every instance built."""
    instances: list[FakeCredential] = []
    rejected: set[str] = set()

    def factory(tenant_id, client_id, *, certificate_data, password, **kwargs):
        certificate = next(c for c in ALL if c.data == certificate_data)
        instance = FakeCredential(tenant_id, client_id, {"certificate": certificate, **kwargs}, rejected)
        instances.append(instance)
        return instance

    monkeypatch.setattr(credentials_module, "CertificateCredential", factory)
    return instances, rejected


def loaded(days: float, version: str, index: int) -> ClientCertificate:
    cert = make_certificate(days_valid=days, index=index)
    return load_certificate_secret(cert.pfx_base64(), PFX_CONTENT_TYPE, name="dataverse-sync-cert", version=version)


V1 = loaded(365, "v1", 0)
V2 = loaded(365, "v2", 1)
SOON = loaded(10, "v3", 2)
ALL = [V1, V2, SOON]


def make(store, clock=None, **kwargs) -> DataverseCredentials:
    return DataverseCredentials(
        store,
        client_id="da7a5e75-0000-4000-8000-0000000a9901",
        authority_host="https://127.0.0.1:4444",
        refresh_seconds=60,
        warning_days=30,
        clock=clock or FakeClock(),
        **kwargs,
    )


def test_one_credential_per_tenant_and_tokens_from_its_cache(built) -> None:
    instances, _ = built
    store = FakeStore([V1])
    creds = make(store)
    assert creds.get_token(TENANT_A, ORG) == f"token-{TENANT_A}-{ORG}/.default-v1"
    creds.get_token(TENANT_A, ORG + "/")
    creds.get_token(TENANT_B, ORG)
    assert [i.tenant_id for i in instances] == [TENANT_A, TENANT_B]
    assert store.loads == 1
    assert instances[0].kwargs["disable_instance_discovery"] is True  # local authority
    assert instances[0].kwargs["authority"] == "https://127.0.0.1:4444"


def test_force_refresh_builds_a_new_credential(built) -> None:
    instances, _ = built
    creds = make(FakeStore([V1]))
    creds.get_token(TENANT_A, ORG)
    creds.get_token(TENANT_A, ORG, force_refresh=True)
    assert len(instances) == 2


def test_rotation_is_picked_up_after_the_refresh_interval(built) -> None:
    instances, _ = built
    store, clock = FakeStore([V1]), FakeClock()
    creds = make(store, clock)
    assert creds.get_token(TENANT_A, ORG).endswith("v1")
    store.certificates.append(V2)
    clock.now = 59
    assert creds.get_token(TENANT_A, ORG).endswith("v1")  # not yet re-checked
    clock.now = 61
    assert creds.get_token(TENANT_A, ORG).endswith("v2")
    assert store.version_checks == 1
    assert len(instances) == 2


def test_rejected_certificate_triggers_one_reload_and_retry(built) -> None:
    _instances, rejected = built
    store = FakeStore([V1])
    creds = make(store)
    creds.get_token(TENANT_A, ORG)
    rejected.add(V1.thumbprint)  # the old certificate was removed from the app registration...
    store.certificates.append(V2)  # ...and the new one is in Key Vault, before our refresh interval
    assert creds.get_token(TENANT_A, ORG, force_refresh=True).endswith("v2")
    assert store.loads == 2


def test_rejection_without_a_new_certificate_fails_with_entras_reason(built) -> None:
    _, rejected = built
    store = FakeStore([V1])
    creds = make(store)
    rejected.add(V1.thumbprint)
    with pytest.raises(TokenUnavailable, match="AADSTS700027") as caught:
        creds.get_token(TENANT_A, ORG)
    assert TENANT_A in str(caught.value)
    assert store.loads == 2  # reloaded once, found the same version, gave up


def test_key_vault_down_at_start_is_a_token_failure(built) -> None:
    creds = make(FakeStore([V1], failing=True))
    with pytest.raises(TokenUnavailable, match="Key Vault"):
        creds.get_token(TENANT_A, ORG)


def test_key_vault_down_during_a_rotation_check_keeps_the_certificate(built, caplog) -> None:
    store, clock = FakeStore([V1]), FakeClock()
    creds = make(store, clock)
    creds.get_token(TENANT_A, ORG)
    store.failing, clock.now = True, 100
    with caplog.at_level(logging.WARNING):
        assert creds.get_token(TENANT_A, ORG).endswith("v1")
    assert any(getattr(r, "event", None) == "certificate_check_failed" for r in caplog.records)


def test_expiry_warning_is_structured(built, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.identity.credentials"):
        make(FakeStore([SOON])).get_token(TENANT_A, ORG)
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "certificate_expiring"]
    assert record.levelno == logging.WARNING
    assert record.thumbprint == SOON.thumbprint
    assert 9 < record.days_left <= 10
    assert "expires in" in record.getMessage()


def test_no_warning_for_a_fresh_certificate(built, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        status = make(FakeStore([V1])).certificate_status()
    assert not status.expiring
    assert not [r for r in caplog.records if getattr(r, "event", None) == "certificate_expiring"]


@pytest.mark.parametrize(
    ("host", "disabled"),
    [
        ("https://login.microsoftonline.com", False),
        ("https://login.microsoftonline.us/", False),
        ("login.chinacloudapi.cn", False),
        ("https://127.0.0.1:4444", True),
        ("https://login.example.internal", True),
    ],
)
def test_instance_discovery_only_for_known_clouds(host: str, disabled: bool) -> None:
    assert needs_instance_discovery_disabled(host) is disabled
