"""Signing and validating the access tokens of the emulated Entra ID.

One RSA key signs every tenant's tokens, as Entra ID's common signing keys do (JWKS at
`/{tenant}/discovery/v2.0/keys`). Tokens have the claims resource servers check: `aud` (the resource), `iss`,
`tid`, `oid`, `appid`/`azp`, `iat`/`nbf`/`exp`. Resource emulators (Key Vault, Dataverse) validate with
`TokenAuthority.validate`, the same check a real resource does against the published keys.
Claims follow https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference (v1.0 tokens,
which is what Dataverse and Key Vault receive: `iss` = https://sts.windows.net/{tid}/, `appid`, `ver` "1.0").
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

TOKEN_LIFETIME_SECONDS = 3600  # Entra's default lifetime is 60-90 min; MSAL treats < 5 min left as expired.
# Reasons of `InvalidAccessToken` that resources translate into their own wording (Key Vault's AKV1xxxx texts).
UNKNOWN_KEY = "token signed by an unknown key"
WRONG_AUDIENCE = "token audience is not this resource"
WRONG_TENANT = "token tenant is not this resource's tenant"
ISSUER_NOT_OF_TENANT = "token issuer does not match its tenant"


def issuer_for(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


class InvalidAccessToken(Exception):
    """A bearer token a resource must reject; `reason` is safe to return to the caller (no token text)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_on: int
    claims: dict[str, Any]


class TokenAuthority:
    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324

    def issue(
        self,
        *,
        tenant_id: str,
        audience: str,
        app_id: str,
        object_id: str,
        lifetime: int = TOKEN_LIFETIME_SECONDS,
        extra: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> IssuedToken:
        issued_at = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer_for(tenant_id),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + lifetime,
            "tid": tenant_id,
            "oid": object_id,
            "sub": object_id,
            "appid": app_id,
            "azp": app_id,
            "appidacr": "2",  # 2 = certificate (1 = secret); informational
            "idtyp": "app",
            "ver": "1.0",
            "uti": uuid.uuid4().hex,
            **(extra or {}),
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})
        return IssuedToken(token, claims["exp"], claims)

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "x5t": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def validate(self, token: str, *, audience: str | list[str], tenant_id: str | None = None) -> dict[str, Any]:
        """Claims of a valid token for `audience` (and `tenant_id` if given); InvalidAccessToken otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidAccessToken("malformed token") from None
        if header.get("kid") != self.kid:
            raise InvalidAccessToken(UNKNOWN_KEY)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=audience,
                options={"require": ["exp", "iat", "aud", "iss", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidAccessToken("token expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidAccessToken(WRONG_AUDIENCE) from None
        except jwt.PyJWTError as exc:
            raise InvalidAccessToken(f"invalid token: {type(exc).__name__}") from None
        if tenant_id is not None and claims["tid"] != tenant_id:
            raise InvalidAccessToken(WRONG_TENANT)
        if claims["iss"] != issuer_for(claims["tid"]):
            raise InvalidAccessToken(ISSUER_NOT_OF_TENANT)
        return claims
