"""Verification of certificate client assertions (`private_key_jwt`), as Entra ID's token endpoint does it.

Assertion format: https://learn.microsoft.com/entra/identity-platform/certificate-credentials#assertion-format
- header: `alg` RS256 or PS256; the certificate named by `x5t` (SHA-1) or `x5t#S256` (SHA-256) thumbprint,
  base64url. azure-identity (through MSAL) sends `x5t` *with* "=" padding, so padding is accepted. With
  `send_certificate_chain=True` the header also carries `x5c` (leaf first), whose leaf must be that certificate.
- claims: `aud` = this token endpoint, `iss` = `sub` = client id, `exp` not passed, `nbf` (optional; MSAL sends
  none) not in the future, `jti` unique: a replayed assertion is rejected.
Checks run in this order (first failure wins): header, key lookup, signature, issuer/subject, audience, time, jti.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
from typing import Any

import jwt
from cryptography import x509

from emulators.entra import errors
from emulators.entra.certificates import sha1_thumbprint, sha256_thumbprint
from emulators.entra.directory import AppRegistration, KeyCredential

ALGORITHMS = ("RS256", "PS256")
# Allowed clock difference between client and STS. Entra ID does not document its tolerance; 5 minutes is the
# default ClockSkew of Microsoft.IdentityModel, which Entra ID's token validation is built on.
CLOCK_SKEW = dt.timedelta(minutes=5)


class ReplayCache:
    """`jti` values of accepted assertions per client, kept until the assertion would have expired anyway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], float] = {}

    def first_use(self, client_id: str, jti: str, expires: float, now: float) -> bool:
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: exp for k, exp in self._seen.items() if exp + CLOCK_SKEW.total_seconds() > now}
            if (client_id, jti) in self._seen:
                return False
            self._seen[(client_id, jti)] = expires
            return True


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))


def _thumbprints_from_header(header: dict[str, Any]) -> tuple[bytes | None, bytes | None, x509.Certificate | None]:
    """(sha1, sha256, leaf certificate from x5c) named by the assertion header."""
    try:
        sha1 = _b64url_decode(header["x5t"]) if isinstance(header.get("x5t"), str) else None
        sha256 = _b64url_decode(header["x5t#S256"]) if isinstance(header.get("x5t#S256"), str) else None
        chain = header.get("x5c")
        leaf = None
        if isinstance(chain, list) and chain and isinstance(chain[0], str):
            leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]))  # x5c is standard base64 (RFC 7515)
    except (binascii.Error, ValueError) as exc:
        raise errors.assertion_malformed(f"the certificate header is not valid ({type(exc).__name__})") from None
    return sha1, sha256, leaf


def _find_key(app: AppRegistration, header: dict[str, Any]) -> KeyCredential:
    sha1, sha256, leaf = _thumbprints_from_header(header)
    if leaf is not None:
        if (sha1 and sha1 != sha1_thumbprint(leaf)) or (sha256 and sha256 != sha256_thumbprint(leaf)):
            raise errors.assertion_signature_invalid(
                "The x5c leaf certificate does not match the x5t thumbprint.",
                sha1_thumbprint(leaf).hex().upper(),
                app.client_id,
            )
        sha1, sha256 = sha1 or sha1_thumbprint(leaf), sha256 or sha256_thumbprint(leaf)
    if sha1 is None and sha256 is None:
        raise errors.assertion_signature_invalid("The key was not found.", "", app.client_id)
    key = app.key_by_thumbprint(sha1=sha1, sha256=sha256)
    if key is None:
        shown = (sha1 or sha256 or b"").hex().upper()
        raise errors.assertion_signature_invalid("The key was not found.", shown, app.client_id)
    return key


def _unverified_header(assertion: str) -> dict[str, Any]:
    try:
        header: dict[str, Any] = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise errors.assertion_malformed("the client assertion is not a JWT") from None
    if header.get("alg") not in ALGORITHMS:
        raise errors.assertion_malformed(f"the signing algorithm {header.get('alg')!r} is not RS256 or PS256")
    return header


def _verified_claims(assertion: str, header: dict[str, Any], key: KeyCredential, client_id: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key.public_key,
            algorithms=[header["alg"]],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        raise errors.assertion_signature_invalid(
            "The provided signature value did not match the expected signature value.", key.thumbprint_hex, client_id
        ) from None
    except jwt.PyJWTError as exc:
        raise errors.assertion_malformed(f"the client assertion cannot be read ({type(exc).__name__})") from None
    return claims


def _check_time(claims: dict[str, Any], now: dt.datetime) -> None:
    try:
        expires = dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC)
        valid_from = dt.datetime.fromtimestamp(float(claims.get("nbf", 0)), dt.UTC)
    except (KeyError, TypeError, ValueError):
        raise errors.assertion_malformed("the 'exp' claim is missing or not a number") from None
    if expires + CLOCK_SKEW <= now or valid_from - CLOCK_SKEW > now:
        raise errors.assertion_time_range(now, valid_from, expires)


def verify_client_assertion(
    assertion: str,
    *,
    app: AppRegistration,
    client_id: str,
    accepted_audiences: set[str],
    replay_cache: ReplayCache,
    now: dt.datetime,
) -> KeyCredential:
    """The registered key that signed a valid assertion; raises `EntraError` as Entra ID would answer."""
    header = _unverified_header(assertion)
    key = _find_key(app, header)
    if not key.not_before - CLOCK_SKEW <= now <= key.not_after:
        raise errors.assertion_signature_invalid("The key used is expired.", key.thumbprint_hex, app.client_id)
    claims = _verified_claims(assertion, header, key, app.client_id)
    if claims.get("iss") != claims.get("sub"):
        raise errors.assertion_subject_mismatch()
    if str(claims.get("iss", "")).lower() != client_id.lower():
        raise errors.assertion_client_mismatch()
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(a, str) and a.lower() in accepted_audiences for a in audiences):
        raise errors.assertion_malformed(f"the audience {audience!r} is not this token endpoint")
    _check_time(claims, now)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise errors.assertion_malformed("the 'jti' claim is missing")
    if not replay_cache.first_use(app.client_id, jti, float(claims["exp"]), now.timestamp()):
        raise errors.assertion_replayed()
    return key
