"""The Key Vault secrets data plane over HTTPS, as an ASGI (Starlette) app, with a Python-side seeding API.

REST (https://learn.microsoft.com/rest/api/keyvault/secrets): `GET /secrets/{name}/` (current version; the SDK sends
the trailing slash), `GET /secrets/{name}/{version}`, `GET /secrets/{name}/versions`, `GET /secrets`,
`PUT /secrets/{name}` (new version), `PATCH /secrets/{name}/{version}` (attributes, content type, tags); every call
needs `api-version`. Errors are `{"error": {"code", "message"[, "innererror": {"code"}]}}`.
Authentication (https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses):
a request without a bearer token gets 401 and the challenge
`WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"`, which the
SDK answers with a token from its credential; tokens must be signed by the emulated Entra ID, for audience
https://vault.azure.net, from the vault's tenant. Authorization is Azure RBAC by the token's `oid` (rbac.py); a
principal without the data action gets 403 `Forbidden`/`ForbiddenByRbac` with Key Vault's message.
Secret states: disabled → 403 "Operation get is not allowed on a disabled secret." (`SecretDisabled`). Expired or
not-yet-valid secrets are still returned: Key Vault does not enforce `exp`/`nbf` on secret reads (observed and
confirmed by the Key Vault SDK team: Azure/AzureKeyVault#19, Azure/azure-sdk-for-net#23321), so neither does this.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators import tokens
from emulators.entra.certificates import PEM_CONTENT_TYPE, PFX_CONTENT_TYPE, ClientCertificate
from emulators.keyvault import rbac
from emulators.keyvault.rbac import RoleAssignments
from emulators.keyvault.store import SECRET_NAME, SecretStore, SecretVersion
from emulators.tokens import InvalidAccessToken, TokenAuthority, issuer_for

log = logging.getLogger(__name__)

KEYVAULT_RESOURCE = "https://vault.azure.net"
MAX_PAGE_SIZE = 25  # `maxresults`: "If not specified the service will return up to 25 results."
NOT_FOUND_HELP = (
    "If you recently deleted this secret you may be able to recover it using the correct recovery command. "
    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


class KeyVaultError(Exception):
    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return JSONResponse({"error": error}, status_code=self.status, headers=headers)


class KeyVaultEmulator:
    """One vault. `secrets` and `roles` are the seeding handles; `app()` is what the server group hosts."""

    def __init__(
        self,
        authority: TokenAuthority,
        *,
        tenant_id: str,
        name: str = "dvsync-local-kv",
        location: str = "westeurope",
        authority_host: str = "https://login.microsoftonline.com",
        recovery_level: str = "Recoverable+Purgeable",
        recoverable_days: int = 90,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.authority = authority
        self.tenant_id = tenant_id.lower()
        self.name = name
        self.location = location
        self.authority_host = authority_host.rstrip("/")
        self.recovery_level = recovery_level
        self.recoverable_days = recoverable_days
        self.secrets = SecretStore()
        self.roles = RoleAssignments()
        self.url = ""  # set once hosted; ids in responses use it (or the request's origin before that)
        self.stats: Counter[str] = Counter()
        self._clock = clock

    @property
    def challenge(self) -> str:
        return f'Bearer authorization="{self.authority_host}/{self.tenant_id}", resource="{KEYVAULT_RESOURCE}"'

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/secrets", self.list_secrets, methods=["GET"]),
                Route("/secrets/{name}/versions", self.list_versions, methods=["GET"]),
                Route("/secrets/{name}", self.secret, methods=["GET", "PUT"]),
                Route("/secrets/{name}/", self.secret_version, methods=["GET", "PATCH"]),
                Route("/secrets/{name}/{version}", self.secret_version, methods=["GET", "PATCH"]),
            ]
        )

    # --- endpoints -------------------------------------------------------------------------------------------------

    async def secret(self, request: Request) -> Response:
        if request.method == "PUT":
            return await self._guarded(request, rbac.SET_SECRET, self._set_secret)
        return await self._guarded(request, rbac.GET_SECRET, self._get_secret)

    async def secret_version(self, request: Request) -> Response:
        if request.method == "PATCH":
            return await self._guarded(request, rbac.UPDATE_SECRET, self._update_secret)
        return await self._guarded(request, rbac.GET_SECRET, self._get_secret)

    async def list_secrets(self, request: Request) -> Response:
        return await self._guarded(request, rbac.READ_SECRET_METADATA, self._list_secrets)

    async def list_versions(self, request: Request) -> Response:
        return await self._guarded(request, rbac.READ_SECRET_METADATA, self._list_versions)

    # --- authentication and authorization --------------------------------------------------------------------------

    async def _guarded(
        self, request: Request, action: str, handler: Callable[[Request], Awaitable[tuple[dict[str, Any], int]]]
    ) -> Response:
        """Check api-version, bearer token and RBAC (in Key Vault's order), then run `handler`."""
        self.stats["requests"] += 1
        request_id = str(uuid.uuid4())
        headers = {"x-ms-request-id": request_id, "x-ms-keyvault-region": self.location, "Cache-Control": "no-cache"}
        try:
            if not request.query_params.get("api-version"):
                raise KeyVaultError(400, "BadParameter", "The 'api-version' query parameter is missing.")
            claims = self._authenticate(request)
            secret_name = request.path_params.get("name")
            if secret_name is not None and not SECRET_NAME.match(secret_name):
                raise KeyVaultError(400, "BadParameter", f"The request URI contains an invalid name: {secret_name}")
            self._authorize(claims, action, secret_name)
            body, status = await handler(request)
        except KeyVaultError as error:
            self.stats[f"error:{error.code}"] += 1
            if error.status == 401:
                headers["WWW-Authenticate"] = self.challenge
            return error.response(headers)
        return JSONResponse(body, status_code=status, headers=headers)

    def _authenticate(self, request: Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.stats["challenge"] += 1
            raise KeyVaultError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        try:
            return self.authority.validate(
                token.strip(), audience=[KEYVAULT_RESOURCE, KEYVAULT_RESOURCE + "/"], tenant_id=self.tenant_id
            )
        except InvalidAccessToken as invalid:
            raise KeyVaultError(401, "Unauthorized", self._token_error_message(token.strip(), invalid)) from None

    def _token_error_message(self, token: str, invalid: InvalidAccessToken) -> str:
        # AKV10022/10032/10046 are Key Vault's texts for these cases (seen in Azure SDK and docs issues); for
        # the other failures Key Vault's exact wording is not documented, so the reason is given plainly.
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            claims = {}
        if invalid.reason == tokens.WRONG_AUDIENCE:
            return f"AKV10022: Invalid audience. Expected {KEYVAULT_RESOURCE}, found: {claims.get('aud')}."
        if invalid.reason in (tokens.WRONG_TENANT, tokens.ISSUER_NOT_OF_TENANT):
            return f"AKV10032: Invalid issuer. Expected one of {issuer_for(self.tenant_id)}, found {claims.get('iss')}."
        if invalid.reason == tokens.UNKNOWN_KEY:
            return "AKV10046: Unable to resolve the key used for signature validation."
        return f"Invalid bearer token: {invalid.reason}."

    def _authorize(self, claims: dict[str, Any], action: str, secret_name: str | None) -> None:
        object_id = str(claims.get("oid", ""))
        if self.roles.allows(object_id, action, secret_name):
            return
        self.stats["forbidden"] += 1
        resource = (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/dataverse-sync/providers/"
            f"microsoft.keyvault/vaults/{self.name}" + (f"/secrets/{secret_name}" if secret_name else "")
        )
        # Key Vault's RBAC denial, as documented in rbac-guide ("Troubleshooting") and returned by the service.
        message = (
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, please observe "
            "propagation time.\r\n"
            f"Caller: appid={claims.get('appid')};oid={object_id};iss={claims.get('iss')}\r\n"
            f"Action: '{action}'\r\n"
            f"Resource: '{resource.lower()}'\r\n"
            "Assignment: (not found)\r\n"
            "DenyAssignmentId: null\r\n"
            "DecisionReason: null \r\n"
            f"Vault: {self.name};location={self.location}\r\n"
        )
        raise KeyVaultError(403, "Forbidden", message, inner="ForbiddenByRbac")

    # --- operations --------------------------------------------------------------------------------------------------

    async def _get_secret(self, request: Request) -> tuple[dict[str, Any], int]:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        secret = self.secrets.get(name, version)
        if secret is None:
            raise _secret_not_found(name, version)
        if not secret.enabled:
            raise KeyVaultError(
                403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled"
            )
        body = self._bundle(request, secret)
        out_content_type = request.query_params.get("outContentType")
        if out_content_type and secret.managed and out_content_type != secret.content_type:
            body["value"], body["contentType"] = _convert_certificate(secret.value, out_content_type), out_content_type
        return body, 200

    async def _set_secret(self, request: Request) -> tuple[dict[str, Any], int]:
        payload = await _json_body(request)
        value = payload.get("value") if isinstance(payload, dict) else None
        if not isinstance(value, str):
            raise KeyVaultError(400, "BadParameter", "Property 'value' is required and must be a string.")
        attributes = _attributes_from(payload)
        secret = self.secrets.set(
            request.path_params["name"],
            value,
            content_type=_optional_str(payload, "contentType"),
            enabled=attributes.get("enabled") is not False,
            not_before=attributes.get("nbf"),
            expires=attributes.get("exp"),
            tags=_tags_from(payload),
            now=self._clock(),
        )
        return self._bundle(request, secret), 200

    async def _update_secret(self, request: Request) -> tuple[dict[str, Any], int]:
        name, version = request.path_params["name"], request.path_params.get("version")
        payload = await _json_body(request)
        if not isinstance(payload, dict):
            raise KeyVaultError(400, "BadParameter", "The request body must be a JSON object.")
        attributes = _attributes_from(payload)
        updated = self.secrets.update(
            name,
            version,
            enabled=attributes.get("enabled"),
            not_before=attributes.get("nbf"),
            expires=attributes.get("exp"),
            content_type=_optional_str(payload, "contentType"),
            tags=_tags_from(payload),
            now=self._clock(),
        )
        if updated is None:
            raise _secret_not_found(name, version)
        body = self._bundle(request, updated)
        body.pop("value")  # update returns the bundle without the value
        return body, 200

    async def _list_secrets(self, request: Request) -> tuple[dict[str, Any], int]:
        items = [self._item(request, v, with_version=False) for v in self.secrets.current_versions()]
        return self._page(request, items), 200

    async def _list_versions(self, request: Request) -> tuple[dict[str, Any], int]:
        items = [self._item(request, v, with_version=True) for v in self.secrets.versions(request.path_params["name"])]
        return self._page(request, items), 200

    # --- wire format -----------------------------------------------------------------------------------------------

    def _vault_url(self, request: Request) -> str:
        return self.url or f"{request.url.scheme}://{request.url.netloc}"

    def _attributes(self, secret: SecretVersion) -> dict[str, Any]:
        attributes: dict[str, Any] = {"enabled": secret.enabled}
        if secret.not_before is not None:
            attributes["nbf"] = secret.not_before
        if secret.expires is not None:
            attributes["exp"] = secret.expires
        attributes.update(
            created=secret.created,
            updated=secret.updated,
            recoveryLevel=self.recovery_level,
            recoverableDays=self.recoverable_days,
        )
        return attributes

    def _item(self, request: Request, secret: SecretVersion, *, with_version: bool) -> dict[str, Any]:
        """A SecretItem (lists): id, attributes, contentType, tags, managed; no value."""
        vault = self._vault_url(request)
        item: dict[str, Any] = {
            "id": f"{vault}/secrets/{secret.name}" + (f"/{secret.version}" if with_version else ""),
            "attributes": self._attributes(secret),
        }
        if secret.content_type:
            item["contentType"] = secret.content_type
        if secret.tags:
            item["tags"] = secret.tags
        if secret.managed:
            item["managed"] = True
        return item

    def _bundle(self, request: Request, secret: SecretVersion) -> dict[str, Any]:
        """A SecretBundle (get, set): the version's item, its value, and `kid` for a certificate's secret."""
        body = {"value": secret.value, **self._item(request, secret, with_version=True)}
        if secret.managed:
            body["kid"] = f"{self._vault_url(request)}/keys/{secret.name}/{secret.version}"
        return body

    def _page(self, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        """One page of a list, with `nextLink` (carrying `$skiptoken`) while more remain."""
        raw_size = request.query_params.get("maxresults") or str(MAX_PAGE_SIZE)
        if not raw_size.isdecimal() or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
            raise KeyVaultError(400, "BadParameter", f"maxresults must be between 1 and {MAX_PAGE_SIZE}.")
        size = int(raw_size)
        start = _decode_skiptoken(request.query_params.get("$skiptoken"))
        page = items[start : start + size]
        next_link = None
        if start + size < len(items):
            token = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            query = f"api-version={request.query_params['api-version']}&maxresults={size}&$skiptoken={token}"
            next_link = f"{self._vault_url(request)}{request.url.path}?{query}"
        return {"value": page, "nextLink": next_link}


def _secret_not_found(name: str, version: str | None) -> KeyVaultError:
    shown = f"{name}/{version}" if version else name
    return KeyVaultError(
        404, "SecretNotFound", f"A secret with (name/id) {shown} was not found in this key vault. {NOT_FOUND_HELP}"
    )


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError:  # JSONDecodeError, and UnicodeDecodeError for a body that is not UTF-8
        raise KeyVaultError(400, "BadParameter", "The request body is not valid JSON.") from None


def _attributes_from(payload: dict[str, Any]) -> dict[str, Any]:
    """`attributes` of a set/update body: `enabled` bool, `nbf`/`exp` epoch seconds (SecretAttributes)."""
    attributes = payload.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise KeyVaultError(400, "BadParameter", "Property 'attributes' must be an object.")
    if "enabled" in attributes and not isinstance(attributes["enabled"], bool | None):
        raise KeyVaultError(400, "BadParameter", "Property 'attributes.enabled' must be a boolean.")
    for name in ("nbf", "exp"):
        if attributes.get(name) is not None and not isinstance(attributes[name], int):
            raise KeyVaultError(400, "BadParameter", f"Property 'attributes.{name}' must be seconds since 1970.")
    return attributes


def _optional_str(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise KeyVaultError(400, "BadParameter", f"Property '{name}' must be a string.")
    return value


def _tags_from(payload: dict[str, Any]) -> dict[str, str] | None:
    tags = payload.get("tags")
    if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
        raise KeyVaultError(400, "BadParameter", "Property 'tags' must be an object of strings.")
    return tags


def _decode_skiptoken(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(token.encode()).decode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise KeyVaultError(400, "BadParameter", "The $skiptoken is not valid.") from None


def _convert_certificate(value: str, out_content_type: str) -> str:
    """A certificate's secret in the other format (`outContentType`): base64 PFX <-> PEM (key + chain), written the
    way `SecretStore.import_certificate` writes them."""
    if out_content_type == PEM_CONTENT_TYPE:
        key, certificate, chain = pkcs12.load_key_and_certificates(base64.b64decode(value), None)
        if key is None or certificate is None:
            raise KeyVaultError(400, "BadParameter", "The certificate has no private key to export.")
        return _client_certificate(key, certificate, chain).pem().decode()
    if out_content_type == PFX_CONTENT_TYPE:
        pem_bytes = value.encode()
        key = serialization.load_pem_private_key(pem_bytes, None)
        certificates = x509.load_pem_x509_certificates(pem_bytes)
        return base64.b64encode(_client_certificate(key, certificates[0], certificates[1:]).pfx()).decode()
    raise KeyVaultError(400, "BadParameter", f"outContentType must be {PFX_CONTENT_TYPE} or {PEM_CONTENT_TYPE}.")


def _client_certificate(
    key: PrivateKeyTypes, certificate: x509.Certificate, chain: Sequence[x509.Certificate]
) -> ClientCertificate:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyVaultError(400, "BadParameter", "The certificate's key is not an RSA key.")
    return ClientCertificate(private_key=key, certificate=certificate, chain=tuple(chain))
