"""Managed identity -> Key Vault -> certificate -> CertificateCredential per tenant, against the local cloud over
real HTTPS with the real azure-identity and azure-keyvault-secrets clients."""

from __future__ import annotations

import base64
import logging
import secrets as stdlib_secrets

import pytest

from emulators import seed
from emulators.cloud import LocalCloud
from emulators.entra import create_certificate, pooled_rsa_key
from shared.config.settings import Settings
from shared.identity import TokenUnavailable
from tests.client.integration.conftest import SecretRegistry, build_credentials


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def org(cloud: LocalCloud, settings: Settings, name: str) -> tuple[str, str]:
    environment = settings.environments[name]
    return environment.tenant_id, environment.url


def test_tokens_for_two_tenants_from_the_key_vault_certificate(cloud: LocalCloud, settings: Settings) -> None:
    credentials = build_credentials(cloud, settings)
    for name in ("contoso", "fabrikam"):
        tenant, url = org(cloud, settings, name)
        token = credentials.get_token(tenant, url)
        claims = cloud.authority.validate(token, audience=url, tenant_id=tenant)
        assert claims["appid"] == seed.DATAVERSE_APP_CLIENT_ID
        assert claims["oid"] == seed.DATAVERSE_APP_OBJECT_IDS[tenant]  # the app's service principal there
        assert credentials.get_token(tenant, url) == token  # from the credential's cache
    status = credentials.certificate_status()
    assert status.thumbprint == cloud.app_certificate.thumbprint_hex
    assert not status.expiring


def test_certificate_chain_can_be_sent(cloud: LocalCloud, settings: Settings) -> None:
    """DATAVERSE_SEND_CERT_CHAIN: the assertion carries x5c (subject name + issuer authentication)."""
    credentials = build_credentials(cloud, settings, send_certificate_chain=True)
    tenant, url = org(cloud, settings, "fabrikam")
    assert cloud.authority.validate(credentials.get_token(tenant, url), audience=url, tenant_id=tenant)


def test_tenant_without_consent_fails_with_entras_reason(cloud: LocalCloud, settings: Settings) -> None:
    credentials = build_credentials(cloud, settings)
    with pytest.raises(TokenUnavailable) as caught:
        credentials.get_token(seed.NO_CONSENT_TENANT_ID, "https://northwind.crm.dynamics.com")
    assert "AADSTS700016" in str(caught.value)
    assert seed.NO_CONSENT_TENANT_ID in str(caught.value)


def test_identity_without_key_vault_access_is_a_clear_error(cloud: LocalCloud, settings: Settings) -> None:
    credentials = build_credentials(cloud, settings, managed_identity_client_id=seed.OTHER_IDENTITY_CLIENT_ID)
    tenant, url = org(cloud, settings, "contoso")
    with pytest.raises(TokenUnavailable, match=r"Key Vault .*cannot read certificate secret") as caught:
        credentials.get_token(tenant, url)
    assert "403" in str(caught.value) or "Forbidden" in str(caught.value)


def test_rotation_mid_run_is_picked_up_without_a_restart(cloud: LocalCloud, settings: Settings) -> None:
    name = "rotating-cert"
    first = create_certificate("rotation one", key=pooled_rsa_key("client-tests rotation one"))
    second = create_certificate("rotation two", key=pooled_rsa_key("client-tests rotation two"))
    cloud.directory.add_certificate(seed.DATAVERSE_APP_CLIENT_ID, first.certificate)
    cloud.keyvault.secrets.import_certificate(name, first)
    clock = Clock()
    credentials = build_credentials(cloud, settings, certificate_name=name, certificate_refresh_seconds=60, clock=clock)
    tenant, url = org(cloud, settings, "contoso")
    credentials.get_token(tenant, url)
    assert credentials.certificate_status().thumbprint == first.thumbprint_hex

    # The operator rotates: new certificate on the app registration and in Key Vault, old one removed.
    cloud.directory.add_certificate(seed.DATAVERSE_APP_CLIENT_ID, second.certificate)
    cloud.keyvault.secrets.import_certificate(name, second)
    cloud.directory.remove_certificate(seed.DATAVERSE_APP_CLIENT_ID, first.thumbprint_hex)
    clock.now += 61  # the next refresh check finds the new version
    token = credentials.get_token(tenant, url, force_refresh=True)
    assert cloud.authority.validate(token, audience=url, tenant_id=tenant)["appid"] == seed.DATAVERSE_APP_CLIENT_ID
    assert credentials.certificate_status().thumbprint == second.thumbprint_hex


def test_entra_rejection_reloads_the_certificate_at_once(
    cloud: LocalCloud, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Rotated in Key Vault and the old certificate removed, long before our next refresh check: the rejection
    (AADSTS700027) makes the credentials re-read Key Vault and retry once."""
    name = "rejected-cert"
    old = create_certificate("rejected old", key=pooled_rsa_key("client-tests rejected old"))
    new = create_certificate("rejected new", key=pooled_rsa_key("client-tests rejected new"))
    cloud.directory.add_certificate(seed.DATAVERSE_APP_CLIENT_ID, old.certificate)
    cloud.keyvault.secrets.import_certificate(name, old)
    credentials = build_credentials(cloud, settings, certificate_name=name, certificate_refresh_seconds=86400)
    tenant, url = org(cloud, settings, "fabrikam")
    credentials.get_token(tenant, url)
    cloud.directory.add_certificate(seed.DATAVERSE_APP_CLIENT_ID, new.certificate)
    cloud.keyvault.secrets.import_certificate(name, new)
    cloud.directory.remove_certificate(seed.DATAVERSE_APP_CLIENT_ID, old.thumbprint_hex)
    token = credentials.get_token(tenant, url, force_refresh=True)  # a 401 from Dataverse asks for a fresh one
    assert cloud.authority.validate(token, audience=url, tenant_id=tenant)
    assert credentials.certificate_status().thumbprint == new.thumbprint_hex
    assert any(getattr(r, "event", None) == "certificate_rotated" for r in caplog.records)


def test_expiring_certificate_warns(cloud: LocalCloud, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    name = "expiring-cert"
    soon = create_certificate("expiring", valid_days=12, key=pooled_rsa_key("client-tests expiring"))
    cloud.directory.add_certificate(seed.DATAVERSE_APP_CLIENT_ID, soon.certificate)
    cloud.keyvault.secrets.import_certificate(name, soon)
    credentials = build_credentials(cloud, settings, certificate_name=name, certificate_warning_days=30)
    tenant, url = org(cloud, settings, "contoso")
    with caplog.at_level(logging.WARNING, logger="shared.identity.credentials"):
        credentials.get_token(tenant, url)
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "certificate_expiring"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert warnings[0].__dict__["thumbprint"] == soon.thumbprint_hex
    assert 11 < warnings[0].__dict__["days_left"] <= 12
    assert credentials.certificate_status().expiring


@pytest.fixture
def protected_pfx(cloud: LocalCloud, secrets: SecretRegistry) -> tuple[str, str]:
    """A password-protected PFX in Key Vault; returns (certificate name, password)."""
    password = stdlib_secrets.token_urlsafe(18)
    secrets.add(password)
    certificate = create_certificate("protected", key=pooled_rsa_key("client-tests protected"))
    cloud.directory.add_certificate(seed.DATAVERSE_APP_CLIENT_ID, certificate.certificate)
    cloud.keyvault.secrets.set(
        "protected-cert",
        base64.b64encode(certificate.pfx(password.encode())).decode(),
        content_type="application/x-pkcs12",
        managed=True,
    )
    return "protected-cert", password


def test_password_protected_pfx(cloud: LocalCloud, settings: Settings, protected_pfx: tuple[str, str]) -> None:
    name, password = protected_pfx
    cloud.keyvault.secrets.set("protected-cert-password", password)
    credentials = build_credentials(
        cloud, settings, certificate_name=name, certificate_password_secret="protected-cert-password"
    )
    tenant, url = org(cloud, settings, "contoso")
    assert cloud.authority.validate(credentials.get_token(tenant, url), audience=url, tenant_id=tenant)


def test_wrong_password_names_the_setting_never_the_value(
    cloud: LocalCloud, settings: Settings, protected_pfx: tuple[str, str], secrets: SecretRegistry
) -> None:
    name, _ = protected_pfx
    wrong = "wrong-" + stdlib_secrets.token_urlsafe(12)
    secrets.add(wrong)
    cloud.keyvault.secrets.set("protected-cert-wrong-password", wrong)
    credentials = build_credentials(
        cloud, settings, certificate_name=name, certificate_password_secret="protected-cert-wrong-password"
    )
    tenant, url = org(cloud, settings, "contoso")
    with pytest.raises(TokenUnavailable) as caught:
        credentials.get_token(tenant, url)
    text = str(caught.value)
    assert "DATAVERSE_CERT_PASSWORD_SECRET" in text
    assert "protected-cert-wrong-password" in text
    assert wrong not in text
    assert (caught.value.__cause__ is None and caught.value.__context__ is None) or wrong not in repr(caught.value)
