"""Entra ID's OpenID Connect endpoints for the client credentials grant, as an ASGI (Starlette) app.

- `GET /{tenant}/v2.0/.well-known/openid-configuration`: discovery; MSAL reads `authorization_endpoint` and
  `token_endpoint` from it (../shared/reference/local-emulation.md §4).
- `GET /{tenant}/discovery/v2.0/keys`: the JWKS that signs every tenant's access tokens.
- `POST /{tenant}/oauth2/v2.0/token`: `grant_type=client_credentials` with a certificate assertion or a client
  secret (in the body, or HTTP Basic), `scope=<resource>/.default`.
  https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
`{tenant}` is a tenant id or its initial domain. Access tokens are v1.0 tokens (`iss` https://sts.windows.net/{tid}/),
as Key Vault and Dataverse receive them, with `aud` = the scope without `/.default`, `oid` = the app's service
principal in that tenant, `tid`, `appid`/`azp`, `appidacr` (2 certificate, 1 secret), valid 3599 s.
Handlers are async and never await while they read or change state.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from emulators.entra import errors
from emulators.entra.assertions import ReplayCache, verify_client_assertion
from emulators.entra.directory import AppRegistration, Directory, Tenant
from emulators.entra.errors import EntraError
from emulators.tokens import TokenAuthority

log = logging.getLogger(__name__)

ACCESS_TOKEN_LIFETIME = 3599  # what Entra ID returns for app tokens (the doc's sample response); MSAL renews < 5 min
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


class EntraEmulator:
    """The token service of every tenant in `directory`; `stats` counts requests by kind (for tests)."""

    def __init__(
        self,
        directory: Directory,
        authority: TokenAuthority,
        *,
        token_lifetime: int = ACCESS_TOKEN_LIFETIME,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.directory = directory
        self.authority = authority
        self.token_lifetime = token_lifetime
        self.replay_cache = ReplayCache()
        self.stats: Counter[str] = Counter()
        self._clock = clock

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC) if self._clock else dt.datetime.now(dt.UTC)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]),
                Route("/{tenant}/discovery/v2.0/keys", self.keys, methods=["GET"]),
                Route("/{tenant}/discovery/keys", self.keys, methods=["GET"]),
                Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            ]
        )

    # --- endpoints ---------------------------------------------------------------------------------------------------

    async def openid_configuration(self, request: Request) -> JSONResponse:
        self.stats["discovery"] += 1
        tenant = self.directory.tenant(request.path_params["tenant"])
        if tenant is None:
            return self._error(request, errors.tenant_not_found(request.path_params["tenant"]))
        return JSONResponse(_openid_configuration(_origin(request), tenant.id))

    async def keys(self, request: Request) -> JSONResponse:
        self.stats["keys"] += 1
        tenant_ref = request.path_params["tenant"]
        if tenant_ref not in ("common", "organizations") and self.directory.tenant(tenant_ref) is None:
            return self._error(request, errors.tenant_not_found(tenant_ref))
        return JSONResponse(self.authority.jwks())

    async def token(self, request: Request) -> JSONResponse:
        self.stats["token"] += 1
        form = _parse_form(await request.body())
        try:
            tenant = self.directory.tenant(request.path_params["tenant"])
            if tenant is None:
                raise errors.tenant_not_found(request.path_params["tenant"])
            body = self._client_credentials(request, tenant, form)
        except EntraError as error:
            self.stats["token_error"] += 1
            log.info("token request refused: AADSTS%s for client %s", error.code, form.get("client_id", "?"))
            return self._error(request, error)
        return JSONResponse(body, headers=NO_STORE)

    # --- the grant ---------------------------------------------------------------------------------------------------

    def _client_credentials(self, request: Request, tenant: Tenant, form: dict[str, str]) -> dict[str, Any]:
        grant_type = _required(form, "grant_type")
        if grant_type != "client_credentials":
            raise errors.unsupported_grant_type(grant_type)
        basic_id, basic_secret = _basic_credentials(request)
        client_id = form.get("client_id") or basic_id or ""
        if not client_id:
            raise errors.missing_parameter("client_id")
        resource = _resource_from_scope(_required(form, "scope"))
        app = self.directory.app(client_id)
        principal = self.directory.service_principal(client_id, tenant.id)
        if app is None or principal is None:
            raise errors.app_not_in_directory(client_id, tenant.name)
        method = self._authenticate(request, tenant, app, form, basic_secret)
        if not self.directory.resource_known(resource):
            raise errors.resource_not_found(resource, tenant.name)
        issued = self.authority.issue(
            tenant_id=tenant.id,
            audience=resource,
            app_id=app.client_id,
            object_id=principal.object_id,
            lifetime=self.token_lifetime,
            extra={"appidacr": method},
            now=self.now().timestamp(),
        )
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": issued.access_token,
        }

    def _authenticate(
        self, request: Request, tenant: Tenant, app: AppRegistration, form: dict[str, str], basic_secret: str | None
    ) -> str:
        """The `appidacr` of the client's proof: "2" certificate, "1" secret; EntraError if it does not hold."""
        assertion = form.get("client_assertion")
        secret = form.get("client_secret") or basic_secret
        if assertion:
            if form.get("client_assertion_type") != JWT_BEARER:
                raise errors.missing_parameter("client_assertion_type")
            origin = _origin(request)
            accepted = {
                f"{origin}/{ref}/oauth2/{version}token".lower()
                for ref in {tenant.id, tenant.domain, request.path_params["tenant"]}
                for version in ("v2.0/", "")
            }
            verify_client_assertion(
                assertion,
                app=app,
                client_id=form.get("client_id") or app.client_id,
                accepted_audiences=accepted,
                replay_cache=self.replay_cache,
                now=self.now(),
            )
            return "2"
        if secret:
            now = self.now()
            matching = [p for p in app.password_credentials if p.matches(secret)]
            if not matching:
                raise errors.invalid_client_secret(app.client_id)
            if all(p.expires_at is not None and p.expires_at <= now for p in matching):
                raise errors.expired_client_secret(app.client_id)
            return "1"
        raise errors.missing_client_credential()

    def _error(self, request: Request, error: EntraError) -> JSONResponse:
        correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        body = error.body(correlation_id, self.now())
        headers = {**NO_STORE, "x-ms-request-id": body["trace_id"], "client-request-id": correlation_id}
        return JSONResponse(body, status_code=error.status, headers=headers)


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _openid_configuration(origin: str, tenant_id: str) -> dict[str, Any]:
    """The v2.0 discovery document, as Entra ID serves it (hosts replaced by the emulator's own origin)."""
    base = f"{origin}/{tenant_id}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "name", "tid", "ver"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    }


def _parse_form(raw: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded body; the first value wins for a repeated field."""
    fields = urllib.parse.parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise errors.missing_parameter(name)
    return value


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    """client_secret_basic: `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)


def _resource_from_scope(scope: str) -> str:
    """The one resource a client-credentials scope names: `<resource>/.default`."""
    scopes = scope.split()
    defaults = [s for s in scopes if s.endswith("/.default")]
    if len(defaults) > 1:
        raise errors.multiple_resources(scope)
    if len(defaults) != 1 or len(scopes) != 1:
        raise errors.invalid_scope_for_client_credentials(scope)
    return defaults[0][: -len("/.default")]
