"""Helpers for the identity emulator tests: real clients wired to the local cloud, and hand-made assertions.

Every HTTPS call passes the local CA explicitly (`connection_verify=` / `verify=` per request), because
REQUESTS_CA_BUNDLE may be set and then `requests` ignores `Session.verify` (psf/requests#3829).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import msal  # type: ignore[import-untyped]
import requests
from azure.core.credentials import TokenCredential
from azure.identity import CertificateCredential, ClientAssertionCredential, ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from emulators.cloud import LocalCloud
from emulators.entra import ClientCertificate


def ca(cloud: LocalCloud) -> str:
    return str(cloud.ca.ca_bundle)


def token_endpoint(cloud: LocalCloud, tenant: str) -> str:
    return f"{cloud.entra_url}/{tenant}/oauth2/v2.0/token"


def _entra_options(cloud: LocalCloud) -> dict[str, Any]:
    """What every credential needs to use the emulated Entra ID; no retries, so expected failures are quick."""
    return {
        "authority": cloud.entra_url,
        "disable_instance_discovery": True,
        "connection_verify": ca(cloud),
        "retry_total": 0,
    }


def certificate_credential(cloud: LocalCloud, tenant: str, client_id: str, **kwargs: Any) -> CertificateCredential:
    return CertificateCredential(tenant, client_id, **_entra_options(cloud), **kwargs)


def secret_credential(cloud: LocalCloud, tenant: str, client_id: str, secret: str) -> ClientSecretCredential:
    return ClientSecretCredential(tenant, client_id, secret, **_entra_options(cloud))


def assertion_credential(cloud: LocalCloud, tenant: str, client_id: str, assertion: str) -> ClientAssertionCredential:
    return ClientAssertionCredential(tenant, client_id, lambda: assertion, **_entra_options(cloud))


def secret_client(cloud: LocalCloud, credential: TokenCredential) -> SecretClient:
    """A SecretClient of the cloud's vault (127.0.0.1 is no vault domain, so the challenge resource is not
    checked); no retries, so expected failures are quick."""
    return SecretClient(
        cloud.keyvault_url,
        credential,
        verify_challenge_resource=False,
        connection_verify=ca(cloud),
        retry_total=0,
    )


def client_assertion(
    certificate: ClientCertificate,
    client_id: str,
    audience: str,
    *,
    alg: str = "RS256",
    thumbprint_header: str = "x5t",
    padded_x5t: bool = True,
    lifetime: int = 600,
    issued_at: float | None = None,
    jti: str | None = None,
    x5c: list[str] | None = None,
    signing_key: Any = None,
    **claims: Any,
) -> str:
    """A client assertion as certificate-credentials documents it (and as MSAL builds it, `x5t` padded)."""
    now = issued_at if issued_at is not None else time.time()
    header: dict[str, Any] = {"typ": "JWT"}
    if thumbprint_header == "x5t":
        thumbprint = certificate.x5t
        header["x5t"] = thumbprint + "=" * (-len(thumbprint) % 4) if padded_x5t else thumbprint
    else:
        header["x5t#S256"] = certificate.x5t_s256
    if x5c is not None:
        header["x5c"] = x5c
    payload = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": jti or str(uuid.uuid4()),
        "iat": now,
        "exp": now + lifetime,
    }
    payload.update(claims)
    return jwt.encode(payload, signing_key or certificate.private_key, algorithm=alg, headers=header)


class VerifyingHttpClient:
    """MSAL's http_client interface over requests, passing the CA bundle on every request."""

    def __init__(self, ca_bundle: str) -> None:
        self.session = requests.Session()
        self.ca_bundle = ca_bundle

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.get(url, params=params, headers=headers, verify=self.ca_bundle, timeout=10)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> requests.Response:
        return self.session.post(url, params=params, data=data, headers=headers, verify=self.ca_bundle, timeout=10)

    def close(self) -> None:
        self.session.close()


def msal_token(cloud: LocalCloud, tenant: str, client_id: str, client_credential: Any, scope: str) -> dict[str, Any]:
    """MSAL's raw result (the token, or Entra's error JSON with `error_codes`)."""
    http = VerifyingHttpClient(ca(cloud))
    if isinstance(client_credential, dict) and isinstance(client_credential.get("client_assertion"), str):
        assertion = client_credential["client_assertion"]
        client_credential = {"client_assertion": lambda: assertion}  # MSAL wants a callable (msal#746)
    try:
        app = msal.ConfidentialClientApplication(
            client_id,
            client_credential=client_credential,
            authority=f"{cloud.entra_url}/{tenant}",
            http_client=http,
            instance_discovery=False,
        )
        result: dict[str, Any] = app.acquire_token_for_client([scope])
        return result
    finally:
        http.close()


def claims_of(token: str) -> dict[str, Any]:
    """Claims without verification (for asserting on what the emulator issued; verification has its own tests)."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded
