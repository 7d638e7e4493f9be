"""X.509 client certificates for app registrations: generation, thumbprints and the PEM/PFX forms clients load.

An app registration authenticates with a certificate whose thumbprint Entra ID knows; the client signs its
assertion with the private key and names the certificate by `x5t` (SHA-1) or `x5t#S256` (SHA-256) thumbprint.
https://learn.microsoft.com/entra/identity-platform/certificate-credentials

RSA key generation is the slow part of starting the local cloud (~30-80 ms per 2048-bit key), so keys come from a
small per-process pool keyed by purpose. Certificates are always issued fresh; reusing a key between independent
local clouds in one process changes nothing a test or the app can observe.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PFX_CONTENT_TYPE = "application/x-pkcs12"
PEM_CONTENT_TYPE = "application/x-pem-file"


@functools.lru_cache(maxsize=32)
def pooled_rsa_key(purpose: str = "default") -> rsa.RSAPrivateKey:
    """An RSA-2048 key generated once per process and purpose (see the module docstring for why)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sha1_thumbprint(certificate: x509.Certificate) -> bytes:
    # SHA-1 is what Entra ID calls the certificate thumbprint (`x5t`); it identifies, it does not protect.
    return hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).digest()  # noqa: S324


def sha256_thumbprint(certificate: x509.Certificate) -> bytes:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate with its RSA private key (and optional issuer chain), as an app registration's credential."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()  # issuers, leaf first excluded; sent as x5c with the leaf

    @property
    def thumbprint_hex(self) -> str:
        """SHA-1 thumbprint in upper-case hex, as the Entra admin center and Key Vault show it."""
        return sha1_thumbprint(self.certificate).hex().upper()

    @property
    def x5t(self) -> str:
        return b64url(sha1_thumbprint(self.certificate))

    @property
    def x5t_s256(self) -> str:
        return b64url(sha256_thumbprint(self.certificate))

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def certificate_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.certificate, *self.chain))

    def pem(self) -> bytes:
        """Unencrypted PKCS#8 key followed by the certificate chain: Key Vault's `application/x-pem-file` form."""
        key = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return key + self.certificate_pem()

    def pfx(self, password: bytes | None = None) -> bytes:
        """PKCS#12 with key, certificate and chain; Key Vault exports it without a password."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(
            name=None,
            key=self.private_key,
            cert=self.certificate,
            cas=list(self.chain) or None,
            encryption_algorithm=encryption,
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_certificate(
    common_name: str,
    *,
    valid_days: int = 365,
    not_before: dt.datetime | None = None,
    key: rsa.RSAPrivateKey | None = None,
    issuer: ClientCertificate | None = None,
    is_ca: bool = False,
) -> ClientCertificate:
    """A certificate for `common_name`: self-signed, or issued by `issuer` (which then becomes its chain)."""
    key = key or pooled_rsa_key(f"certificate:{common_name}")
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    signer = issuer.private_key if issuer else key
    certificate = builder.sign(signer, hashes.SHA256())
    chain = (issuer.certificate, *issuer.chain) if issuer else ()
    return ClientCertificate(private_key=key, certificate=certificate, chain=chain)
