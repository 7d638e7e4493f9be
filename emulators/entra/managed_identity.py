"""The App Service / Azure Functions managed identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`).

Protocol (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference):
`GET {IDENTITY_ENDPOINT}?resource=<uri>&api-version=2019-08-01[&client_id=|&principal_id=|&object_id=|&mi_res_id=]`
with header `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; at most one identity selector, none meaning the system-assigned
identity. Answer: `{"access_token", "expires_on": "<epoch seconds, as a string>", "resource", "token_type",
"client_id"}`. Plain http on 127.0.0.1, as the platform's endpoint is.
azure-identity 1.27.0 reaches it through MSAL (`msal/managed_identity.py::_obtain_token_on_app_service`), which
sends `client_id`, `object_id` or `mi_res_id` and reads errors as `{"statusCode", "message"}`. The documented page
gives no error bodies; the ones below use that shape with App Service's wording where it is known (unknown
identity) and a plain description otherwise.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import Counter
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from emulators.entra.directory import Directory, ManagedIdentity
from emulators.tokens import TokenAuthority

log = logging.getLogger(__name__)

TOKEN_PATH = "/msi/token"
SUPPORTED_API_VERSIONS = ("2019-08-01",)
SELECTORS = ("client_id", "principal_id", "object_id", "mi_res_id")
TOKEN_LIFETIME = 3599


class ManagedIdentityEndpoint:
    """The identity endpoint of one app (the Function App) and the identities assigned to it."""

    def __init__(
        self,
        directory: Directory,
        authority: TokenAuthority,
        *,
        identity_header: str,
        token_lifetime: int = TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.authority = authority
        self.identity_header = identity_header
        self.token_lifetime = token_lifetime
        self.system_assigned: ManagedIdentity | None = None
        self.user_assigned: dict[str, ManagedIdentity] = {}
        self.stats: Counter[str] = Counter()
        self._clock = clock

    def assign(self, identity: ManagedIdentity, *, system_assigned: bool = False) -> None:
        """Attach an identity to the app, as `identity.userAssignedIdentities` (or `SystemAssigned`) does."""
        if system_assigned:
            self.system_assigned = identity
        else:
            self.user_assigned[identity.client_id] = identity

    def app(self) -> Starlette:
        return Starlette(routes=[Route(TOKEN_PATH, self.token, methods=["GET"])])

    async def token(self, request: Request) -> JSONResponse:
        self.stats["token"] += 1
        presented = request.headers.get("x-identity-header", "")
        if not presented or not hmac.compare_digest(presented.encode(), self.identity_header.encode()):
            return _error(401, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.")
        query = request.query_params
        api_version = query.get("api-version", "")
        if api_version not in SUPPORTED_API_VERSIONS:
            return _error(400, f"api-version '{api_version}' is not supported; use 2019-08-01.")
        resource = query.get("resource", "")
        if not resource:
            return _error(400, "The 'resource' query parameter is required.")
        selectors = {name: query[name] for name in SELECTORS if query.get(name)}
        if len(selectors) > 1:
            return _error(400, "Only one of client_id, principal_id, object_id or mi_res_id may be given.")
        identity = self._select(selectors)
        if identity is None:
            # App Service's own wording for an identity that is not assigned to the app.
            return _error(
                400,
                "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.",
            )
        if not self.directory.resource_known(resource):
            return _error(400, f"The resource principal named {resource} was not found in the tenant.")
        resource_id = identity.resource_id
        issued = self.authority.issue(
            tenant_id=identity.tenant_id,
            audience=resource,
            app_id=identity.client_id,
            object_id=identity.object_id,
            lifetime=self.token_lifetime,
            extra={"appidacr": "2", "xms_mirid": resource_id, "idtyp": "app"},
            now=self._clock(),
        )
        return JSONResponse(
            {
                "access_token": issued.access_token,
                "expires_on": str(issued.expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }
        )

    def _select(self, selectors: dict[str, str]) -> ManagedIdentity | None:
        if not selectors:
            return self.system_assigned
        name, value = next(iter(selectors.items()))
        value = value.lower()
        for identity in self.user_assigned.values():
            if (
                (name == "client_id" and identity.client_id == value)
                or (name in ("principal_id", "object_id") and identity.object_id == value)
                or (name == "mi_res_id" and identity.resource_id.lower() == value)
            ):
                return identity
        return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"statusCode": status, "message": message}, status_code=status)
