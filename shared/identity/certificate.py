"""The app registration's certificate as Key Vault serves it, parsed and checked before any credential uses it.

A Key Vault certificate's private part is the *secret* of the same name: base64 PFX (`application/x-pkcs12`) or
PEM with key and certificate (`application/x-pem-file`)
(learn.microsoft.com/azure/key-vault/certificates/about-certificates#composition-of-a-certificate).
azure-identity's `CertificateCredential` takes those bytes as `certificate_data` and needs an RSA key.
Errors name what to fix (a setting, a secret name) and never carry key material, passwords or secret values.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

PFX_CONTENT_TYPE = "application/x-pkcs12"
PEM_CONTENT_TYPE = "application/x-pem-file"
PASSWORD_SETTING = "DATAVERSE_CERT_PASSWORD_SECRET"  # noqa: S105 - the name of a setting


class CertificateError(Exception):
    """The certificate secret cannot be used. The message names the certificate/setting, never secret values."""


@dataclass(frozen=True)
class ClientCertificate:
    """A parsed, usable certificate. `data`/`password` are what CertificateCredential needs (never printed)."""

    data: bytes = field(repr=False)
    password: bytes | None = field(repr=False)
    name: str
    version: str | None
    thumbprint: str  # SHA-1, hex upper case: what the portal and Entra error messages show
    subject: str
    not_before: datetime
    not_after: datetime

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


def load_certificate_secret(
    value: str,
    content_type: str | None,
    *,
    name: str,
    version: str | None,
    password: str | None = None,
    password_secret_name: str | None = None,
) -> ClientCertificate:
    """Parse a certificate secret (PFX base64 or PEM), checking the password and the key type."""
    stripped = value.strip()
    is_pem = (content_type or "").lower() == PEM_CONTENT_TYPE or (
        not content_type and stripped.startswith("-----BEGIN")
    )
    secret_password = password.encode("utf-8") if password is not None else None
    where = f"Key Vault certificate {name!r}" + (f" (version {version})" if version else "")
    if is_pem:
        data = stripped.encode("ascii", "replace")
        key, certificate = _load_pem(data, secret_password, where, password_secret_name)
    else:
        data = _base64_pfx(stripped, where)
        key, certificate = _load_pfx(data, secret_password, where, password_secret_name)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"{where}: the private key must be RSA (azure-identity CertificateCredential)")
    return ClientCertificate(
        data=data,
        password=secret_password,
        name=name,
        version=version,
        thumbprint=certificate.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - an identifier, as Entra uses
        subject=certificate.subject.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def _base64_pfx(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError(
            f"{where}: the secret is neither PEM nor base64 PFX; upload the certificate to Key Vault as a "
            "certificate (its secret then holds PFX or PEM)"
        ) from None


def _password_problem(where: str, password: bytes | None, password_secret_name: str | None) -> CertificateError:
    if password is None:
        return CertificateError(
            f"{where}: the private key is password-protected; set {PASSWORD_SETTING} to the name of the Key Vault "
            "secret that holds its password"
        )
    return CertificateError(
        f"{where}: could not be decrypted with the password from the Key Vault secret named by {PASSWORD_SETTING}"
        f" ({password_secret_name!r}); check that secret's value"
    )


def _load_pfx(
    data: bytes, password: bytes | None, where: str, password_secret_name: str | None
) -> tuple[object, x509.Certificate]:
    try:
        key, certificate, _ = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError):
        # cryptography says "Invalid password or PKCS12 data"; a readable PFX without a password tells them apart.
        raise _password_problem(where, password, password_secret_name) from None
    if key is None or certificate is None:
        raise CertificateError(f"{where}: the PFX must contain the private key and its certificate")
    return key, certificate


def _load_pem(
    data: bytes, password: bytes | None, where: str, password_secret_name: str | None
) -> tuple[object, x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError(f"{where}: the PEM holds no readable certificate") from None
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        # "Password was not given but private key is encrypted" / "Password was given but ... not encrypted"
        if password is None:
            raise _password_problem(where, password, password_secret_name) from None
        key = serialization.load_pem_private_key(data, None)
    except ValueError:
        if b"PRIVATE KEY-----" not in data:
            raise CertificateError(f"{where}: the PEM holds no private key") from None
        raise _password_problem(where, password, password_secret_name) from None
    public = _public_der(key.public_key())
    for certificate in certificates:  # the leaf is the one matching the key; the rest is the chain
        if _public_der(certificate.public_key()) == public:
            return key, certificate
    raise CertificateError(f"{where}: no certificate in the PEM matches its private key")


def _public_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
