"""The emulated Entra ID directory: tenants, app registrations, service principals (consent), managed identities.

The model follows how Entra ID works for server-to-server apps
(https://learn.microsoft.com/entra/identity-platform/app-objects-and-service-principals):
- an *app registration* (application object) lives in its home tenant and has credentials: certificates, known by
  their SHA-1/SHA-256 thumbprints (keyCredentials), and/or client secrets (passwordCredentials);
- a *service principal* is the app's local instance in one tenant, with an object id of its own in each tenant. It
  exists in the home tenant, and in another tenant only once that tenant consented to a multi-tenant app;
- a *managed identity* is a service principal without credentials the app can see; tokens come from the hosting
  platform's identity endpoint.

The Python-side API (used by the local cloud and tests to seed and change the directory) may be called from any
thread while the emulators serve requests on their event loop, so changes and lookups go through one lock.
Client secrets are stored as SHA-256 digests only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.entra.certificates import sha1_thumbprint, sha256_thumbprint


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str  # display name; Entra's error messages name the directory by it
    domain: str  # initial domain, e.g. contoso.onmicrosoft.com (accepted in place of the id in URLs)


@dataclass(frozen=True)
class KeyCredential:
    """A registered certificate: what Entra ID keeps of it (public key, thumbprints, validity)."""

    sha1: bytes
    sha256: bytes
    public_key: rsa.RSAPublicKey = field(repr=False)
    not_before: dt.datetime
    not_after: dt.datetime
    key_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def thumbprint_hex(self) -> str:
        return self.sha1.hex().upper()


@dataclass(frozen=True)
class PasswordCredential:
    """A client secret, kept as a digest; `hint` is its first three characters, as the admin center shows."""

    digest: bytes = field(repr=False)
    hint: str
    expires_at: dt.datetime | None
    key_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.digest, _secret_digest(secret))


@dataclass
class AppRegistration:
    client_id: str
    display_name: str
    home_tenant_id: str
    multi_tenant: bool
    key_credentials: list[KeyCredential] = field(default_factory=list)
    password_credentials: list[PasswordCredential] = field(default_factory=list)

    def key_by_thumbprint(self, *, sha1: bytes | None = None, sha256: bytes | None = None) -> KeyCredential | None:
        for key in self.key_credentials:
            if (sha1 is not None and key.sha1 == sha1) or (sha256 is not None and key.sha256 == sha256):
                return key
        return None


@dataclass(frozen=True)
class ServicePrincipal:
    app_id: str
    tenant_id: str
    object_id: str


@dataclass(frozen=True)
class ManagedIdentity:
    """A user-assigned (or system-assigned) managed identity: a service principal in its home tenant."""

    client_id: str
    object_id: str
    tenant_id: str
    name: str
    resource_id: str  # ARM id, accepted as `mi_res_id` by the App Service identity endpoint


def _secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class DirectoryError(ValueError):
    """A seeding call that contradicts the directory (unknown tenant, consent to a single-tenant app, ...)."""


class Directory:
    """All tenants of the emulated cloud. See the module docstring."""

    def __init__(self, *, strict_resources: bool = False) -> None:
        self._lock = threading.RLock()
        self._tenants: dict[str, Tenant] = {}
        self._apps: dict[str, AppRegistration] = {}
        self._service_principals: dict[tuple[str, str], ServicePrincipal] = {}
        self._managed_identities: dict[str, ManagedIdentity] = {}
        self._resources: set[str] = set()
        # Entra ID issues tokens only for resources that have a service principal in the tenant (AADSTS500011).
        # Permissive by default: any https:// resource is accepted, so new Dataverse org URLs need no seeding.
        self.strict_resources = strict_resources

    # --- seeding ---------------------------------------------------------------------------------------------

    def add_tenant(self, tenant_id: str, name: str, domain: str | None = None) -> Tenant:
        tenant = Tenant(tenant_id.lower(), name, (domain or f"{name.lower().replace(' ', '')}.onmicrosoft.com"))
        with self._lock:
            self._tenants[tenant.id] = tenant
        return tenant

    def register_app(
        self,
        client_id: str,
        *,
        home_tenant_id: str,
        display_name: str,
        multi_tenant: bool = False,
        home_object_id: str | None = None,
    ) -> AppRegistration:
        """Register an app; its service principal in the home tenant is created with it, as the portal does."""
        with self._lock:
            self._require_tenant(home_tenant_id)
            app = AppRegistration(client_id.lower(), display_name, home_tenant_id.lower(), multi_tenant)
            self._apps[app.client_id] = app
            self._add_service_principal(app.client_id, app.home_tenant_id, home_object_id)
            return app

    def add_certificate(self, client_id: str, certificate: x509.Certificate) -> KeyCredential:
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise DirectoryError("Entra ID client assertions need an RSA certificate")
        key = KeyCredential(
            sha1=sha1_thumbprint(certificate),
            sha256=sha256_thumbprint(certificate),
            public_key=public_key,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )
        with self._lock:
            self._require_app(client_id).key_credentials.append(key)
        return key

    def remove_certificate(self, client_id: str, thumbprint_hex: str) -> None:
        with self._lock:
            app = self._require_app(client_id)
            app.key_credentials = [k for k in app.key_credentials if k.thumbprint_hex != thumbprint_hex.upper()]

    def add_client_secret(self, client_id: str, secret: str, *, expires_at: dt.datetime | None = None) -> None:
        credential = PasswordCredential(_secret_digest(secret), secret[:3], expires_at)
        with self._lock:
            self._require_app(client_id).password_credentials.append(credential)

    def consent(self, client_id: str, tenant_id: str, *, object_id: str | None = None) -> ServicePrincipal:
        """Admin consent of `tenant_id` to a multi-tenant app: creates the app's service principal there."""
        with self._lock:
            app = self._require_app(client_id)
            self._require_tenant(tenant_id)
            if tenant_id.lower() != app.home_tenant_id and not app.multi_tenant:
                raise DirectoryError(f"app {client_id} is single-tenant; only its home tenant has it")
            return self._add_service_principal(app.client_id, tenant_id.lower(), object_id)

    def revoke_consent(self, client_id: str, tenant_id: str) -> None:
        with self._lock:
            self._service_principals.pop((client_id.lower(), tenant_id.lower()), None)

    def add_managed_identity(
        self, client_id: str, object_id: str, *, tenant_id: str, name: str, resource_group: str = "dataverse-sync"
    ) -> ManagedIdentity:
        resource_id = (
            f"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/{resource_group}"
            f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        )
        identity = ManagedIdentity(client_id.lower(), object_id.lower(), tenant_id.lower(), name, resource_id)
        with self._lock:
            self._require_tenant(tenant_id)
            self._managed_identities[identity.client_id] = identity
        return identity

    def add_resource(self, resource: str) -> None:
        with self._lock:
            self._resources.add(resource.rstrip("/"))

    # --- lookups (used by the endpoints) ------------------------------------------------------------------------

    def tenant(self, id_or_domain: str) -> Tenant | None:
        key = id_or_domain.lower()
        with self._lock:
            return self._tenants.get(key) or next((t for t in self._tenants.values() if t.domain == key), None)

    def app(self, client_id: str) -> AppRegistration | None:
        with self._lock:
            return self._apps.get(client_id.lower())

    def service_principal(self, client_id: str, tenant_id: str) -> ServicePrincipal | None:
        with self._lock:
            return self._service_principals.get((client_id.lower(), tenant_id.lower()))

    def managed_identity(self, client_id: str) -> ManagedIdentity | None:
        with self._lock:
            return self._managed_identities.get(client_id.lower())

    def resource_known(self, resource: str) -> bool:
        """Whether a token may be issued for `resource` (an https URI, or an app id / api:// URI)."""
        if not self.strict_resources:
            return resource.startswith(("https://", "api://")) or _is_guid(resource)
        with self._lock:
            return resource.rstrip("/") in self._resources

    def describe(self) -> dict[str, Any]:
        """The directory as plain data (no secrets), for cloud.json and docs."""
        with self._lock:
            return {
                "tenants": [{"id": t.id, "name": t.name, "domain": t.domain} for t in self._tenants.values()],
                "app_registrations": [
                    {
                        "client_id": a.client_id,
                        "display_name": a.display_name,
                        "home_tenant_id": a.home_tenant_id,
                        "multi_tenant": a.multi_tenant,
                        "certificates": [
                            {
                                "thumbprint_sha1": k.thumbprint_hex,
                                "thumbprint_sha256": k.sha256.hex().upper(),
                                "not_after": k.not_after.isoformat(),
                            }
                            for k in a.key_credentials
                        ],
                        "client_secrets": [{"hint": p.hint} for p in a.password_credentials],
                        "service_principals": {
                            sp.tenant_id: sp.object_id
                            for sp in self._service_principals.values()
                            if sp.app_id == a.client_id
                        },
                    }
                    for a in self._apps.values()
                ],
                "managed_identities": [
                    {"client_id": m.client_id, "object_id": m.object_id, "tenant_id": m.tenant_id, "name": m.name}
                    for m in self._managed_identities.values()
                ],
            }

    # --- internals ------------------------------------------------------------------------------------------------

    def _require_tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id.lower())
        if tenant is None:
            raise DirectoryError(f"unknown tenant {tenant_id}")
        return tenant

    def _require_app(self, client_id: str) -> AppRegistration:
        app = self._apps.get(client_id.lower())
        if app is None:
            raise DirectoryError(f"unknown app registration {client_id}")
        return app

    def _add_service_principal(self, client_id: str, tenant_id: str, object_id: str | None) -> ServicePrincipal:
        sp = ServicePrincipal(client_id, tenant_id, (object_id or str(uuid.uuid4())).lower())
        self._service_principals[(client_id, tenant_id)] = sp
        return sp


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
