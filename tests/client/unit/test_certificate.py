from __future__ import annotations

import datetime as dt

import pytest

from shared.identity.certificate import (
    PEM_CONTENT_TYPE,
    PFX_CONTENT_TYPE,
    CertificateError,
    load_certificate_secret,
)
from tests.client.certificates import make_certificate

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def cert():
    return make_certificate(days_valid=200)


def test_pfx_without_password(cert) -> None:
    loaded = load_certificate_secret(cert.pfx_base64(), PFX_CONTENT_TYPE, name="c", version="v1")
    assert loaded.thumbprint == cert.thumbprint
    assert loaded.version == "v1"
    assert 198 < loaded.days_left(dt.datetime.now(dt.UTC)) < 201
    assert loaded.password is None


def test_pfx_with_password(cert) -> None:
    loaded = load_certificate_secret(
        cert.pfx_base64(PASSWORD), PFX_CONTENT_TYPE, name="c", version="v", password=PASSWORD
    )
    assert loaded.thumbprint == cert.thumbprint
    assert loaded.password == PASSWORD.encode()
    assert PASSWORD not in repr(loaded)
    assert cert.pfx_base64(PASSWORD)[:40] not in repr(loaded)


def test_wrong_password_names_the_setting_not_the_secret(cert) -> None:
    with pytest.raises(CertificateError) as caught:
        load_certificate_secret(
            cert.pfx_base64(PASSWORD),
            PFX_CONTENT_TYPE,
            name="c",
            version="v",
            password="wrong-password",
            password_secret_name="dvsync-cert-password",
        )
    text = str(caught.value)
    assert "DATAVERSE_CERT_PASSWORD_SECRET" in text
    assert "dvsync-cert-password" in text
    assert "wrong-password" not in text
    assert PASSWORD not in text


def test_missing_password_says_which_setting_to_set(cert) -> None:
    with pytest.raises(CertificateError, match="password-protected; set DATAVERSE_CERT_PASSWORD_SECRET"):
        load_certificate_secret(cert.pfx_base64(PASSWORD), PFX_CONTENT_TYPE, name="c", version="v")


@pytest.mark.parametrize("content_type", [PEM_CONTENT_TYPE, None])
def test_pem_with_key_and_certificate(cert, content_type) -> None:
    loaded = load_certificate_secret(cert.pem(), content_type, name="c", version="v")
    assert loaded.thumbprint == cert.thumbprint
    assert loaded.data.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_encrypted_pem(cert) -> None:
    pem = cert.pem(PASSWORD)
    assert load_certificate_secret(pem, PEM_CONTENT_TYPE, name="c", version="v", password=PASSWORD).thumbprint
    with pytest.raises(CertificateError, match="DATAVERSE_CERT_PASSWORD_SECRET") as caught:
        load_certificate_secret(pem, PEM_CONTENT_TYPE, name="c", version="v", password="nope")
    assert "BEGIN" not in str(caught.value)


def test_pem_without_key_or_mismatched_key(cert) -> None:
    other = make_certificate(index=1)
    only_cert = cert.pem().split("-----END PRIVATE KEY-----\n")[1]
    with pytest.raises(CertificateError, match="no private key"):
        load_certificate_secret(only_cert, PEM_CONTENT_TYPE, name="c", version="v")
    mixed = other.pem().split("-----END PRIVATE KEY-----\n")[0] + "-----END PRIVATE KEY-----\n" + only_cert
    with pytest.raises(CertificateError, match="matches its private key"):
        load_certificate_secret(mixed, PEM_CONTENT_TYPE, name="c", version="v")


def test_non_rsa_keys_are_refused() -> None:
    elliptic = make_certificate(elliptic=True)
    with pytest.raises(CertificateError, match="RSA"):
        load_certificate_secret(elliptic.pfx_base64(), PFX_CONTENT_TYPE, name="c", version="v")


def test_garbage_is_refused_without_echoing_it() -> None:
    with pytest.raises(CertificateError, match="neither PEM nor base64 PFX") as caught:
        load_certificate_secret("not base64 !!! s3cr3t", PFX_CONTENT_TYPE, name="c", version="v")
    assert "s3cr3t" not in str(caught.value)
