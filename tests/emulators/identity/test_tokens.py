"""Tokens the emulator issues verify against its published JWKS (fetched over HTTPS), and tampered ones do not."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
import requests
from azure.identity import ManagedIdentityCredential

from emulators import seed
from emulators.cloud import LocalCloud
from emulators.entra import pooled_rsa_key
from emulators.tokens import InvalidAccessToken
from tests.emulators.identity import helpers

AUDIENCE = "https://fabrikam.crm.dynamics.com"
TENANT = seed.FABRIKAM_TENANT_ID


@pytest.fixture(scope="module")
def issued_token(cloud: LocalCloud) -> str:
    credential = helpers.certificate_credential(
        cloud, TENANT, seed.DATAVERSE_APP_CLIENT_ID, certificate_data=cloud.app_certificate.pem()
    )
    return credential.get_token(f"{AUDIENCE}/.default").token


@pytest.fixture(scope="module")
def published_keys(cloud: LocalCloud) -> jwt.PyJWKSet:
    discovery = requests.get(
        f"{cloud.entra_url}/{TENANT}/v2.0/.well-known/openid-configuration", verify=helpers.ca(cloud), timeout=5
    ).json()
    return jwt.PyJWKSet.from_dict(requests.get(discovery["jwks_uri"], verify=helpers.ca(cloud), timeout=5).json())


def _verify(token: str, keys: jwt.PyJWKSet) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=f"https://sts.windows.net/{TENANT}/"
    )
    return claims


def _tamper(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_issued_token_verifies_against_the_jwks(issued_token: str, published_keys: jwt.PyJWKSet) -> None:
    claims = _verify(issued_token, published_keys)
    assert claims["oid"] == seed.DATAVERSE_APP_OBJECT_IDS[TENANT]
    assert claims["exp"] - claims["iat"] == 3599


def test_managed_identity_token_verifies_too(
    cloud: LocalCloud, published_keys: jwt.PyJWKSet, identity_environment: None
) -> None:
    token = ManagedIdentityCredential(client_id=seed.MANAGED_IDENTITY_CLIENT_ID).get_token(f"{AUDIENCE}/.default")
    kid = jwt.get_unverified_header(token.token)["kid"]
    key = next(k for k in published_keys.keys if k.key_id == kid)
    claims = jwt.decode(token.token, key.key, algorithms=["RS256"], audience=AUDIENCE)
    assert claims["oid"] == seed.MANAGED_IDENTITY_OBJECT_ID


def test_tampered_claims_fail_verification(issued_token: str, published_keys: jwt.PyJWKSet) -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(_tamper(issued_token, oid=seed.MANAGED_IDENTITY_OBJECT_ID), published_keys)


def test_token_signed_by_another_key_fails_verification(issued_token: str, published_keys: jwt.PyJWKSet) -> None:
    header = jwt.get_unverified_header(issued_token)
    claims = jwt.decode(issued_token, options={"verify_signature": False})
    forged = jwt.encode(claims, pooled_rsa_key("tests: forger"), algorithm="RS256", headers={"kid": header["kid"]})
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(forged, published_keys)


def test_resources_reject_tampered_tokens(cloud: LocalCloud, issued_token: str) -> None:
    """`TokenAuthority.validate` (what Key Vault and Dataverse use) accepts the real token and refuses a forged one."""
    assert cloud.authority.validate(issued_token, audience=AUDIENCE, tenant_id=TENANT)["tid"] == TENANT
    with pytest.raises(InvalidAccessToken, match="invalid token"):
        cloud.authority.validate(_tamper(issued_token, tid=seed.CONTOSO_TENANT_ID), audience=AUDIENCE)
