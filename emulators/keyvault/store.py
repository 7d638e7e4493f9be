"""Key Vault's secret store: named secrets with immutable versions, attributes, content type and tags.

Model (https://learn.microsoft.com/azure/key-vault/secrets/about-secrets and the REST reference of
`SecretBundle`/`SecretAttributes`): every set creates a new version (32 hex characters); the newest version is the
current one whatever its attributes; only attributes, content type and tags of a version can change afterwards.
A certificate is stored the way Key Vault stores one (about-certificates, "Composition of a certificate"): the
secret of the certificate's name holds the private key and certificate, as PFX in base64
(`application/x-pkcs12`) or as PEM (`application/x-pem-file`), with `kid` pointing at the key of the same name and
`managed: true`; its `nbf`/`exp` are the certificate's validity.
The Python-side API may be called from any thread while the vault serves requests, hence the lock.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

from emulators.entra.certificates import PEM_CONTENT_TYPE, PFX_CONTENT_TYPE, ClientCertificate

# Object names: 1-127 characters, letters, digits and dashes (about-keys-secrets-certificates#object-identifiers).
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


@dataclass(frozen=True)
class SecretVersion:
    name: str
    version: str
    value: str = field(repr=False)
    content_type: str | None
    enabled: bool
    not_before: int | None  # epoch seconds, as Key Vault's `nbf`
    expires: int | None  # `exp`
    created: int
    updated: int
    tags: dict[str, str]
    managed: bool = False  # backs a Key Vault certificate


def new_version_id() -> str:
    return uuid.uuid4().hex


def _epoch(moment: dt.datetime | int | None) -> int | None:
    if moment is None or isinstance(moment, int):
        return moment
    return int(moment.timestamp())


class SecretStore:
    """All secrets of one vault, oldest version first per name."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._versions: dict[str, list[SecretVersion]] = {}

    def set(
        self,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        enabled: bool = True,
        not_before: dt.datetime | int | None = None,
        expires: dt.datetime | int | None = None,
        tags: dict[str, str] | None = None,
        managed: bool = False,
        now: float | None = None,
    ) -> SecretVersion:
        """Add a new (current) version of `name`; ValueError for a name Key Vault would refuse."""
        if not SECRET_NAME.match(name):
            raise ValueError(f"invalid secret name {name!r}: 1-127 letters, digits and dashes")
        stamp = int(now if now is not None else time.time())
        with self._lock:
            key = self._key(name) or name  # names are case-insensitive; the first spelling is kept
            version = SecretVersion(
                name=key,
                version=new_version_id(),
                value=value,
                content_type=content_type,
                enabled=enabled,
                not_before=_epoch(not_before),
                expires=_epoch(expires),
                created=stamp,
                updated=stamp,
                tags=dict(tags or {}),
                managed=managed,
            )
            self._versions.setdefault(key, []).append(version)
            return version

    def import_certificate(
        self,
        name: str,
        certificate: ClientCertificate,
        *,
        content_type: str = PFX_CONTENT_TYPE,
        tags: dict[str, str] | None = None,
    ) -> SecretVersion:
        """Store `certificate` as a new version of the certificate `name`, the way Key Vault exposes it as a secret."""
        if content_type == PFX_CONTENT_TYPE:
            value = base64.b64encode(certificate.pfx()).decode()
        elif content_type == PEM_CONTENT_TYPE:
            value = certificate.pem().decode()
        else:
            raise ValueError(f"a certificate's secret is {PFX_CONTENT_TYPE} or {PEM_CONTENT_TYPE}")
        return self.set(
            name,
            value,
            content_type=content_type,
            not_before=certificate.not_before,
            expires=certificate.not_after,
            tags=tags,
            managed=True,
        )

    def update(
        self,
        name: str,
        version: str | None,
        *,
        enabled: bool | None = None,
        not_before: dt.datetime | int | None = None,
        expires: dt.datetime | int | None = None,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        now: float | None = None,
    ) -> SecretVersion | None:
        """Change attributes of one version (the current one if `version` is None); None if it does not exist."""
        with self._lock:
            current = self.get(name, version)
            if current is None:
                return None
            changes: dict[str, object] = {"updated": int(now if now is not None else time.time())}
            for attribute, value in (
                ("enabled", enabled),
                ("not_before", _epoch(not_before)),
                ("expires", _epoch(expires)),
                ("content_type", content_type),
                ("tags", tags),
            ):
                if value is not None:
                    changes[attribute] = value
            updated = dataclasses.replace(current, **changes)  # type: ignore[arg-type]
            versions = self._versions[current.name]
            versions[versions.index(current)] = updated
            return updated

    def get(self, name: str, version: str | None = None) -> SecretVersion | None:
        with self._lock:
            key = self._key(name)
            versions = self._versions.get(key) if key else None
            if not versions:
                return None
            if not version:
                return versions[-1]
            return next((v for v in versions if v.version == version.lower()), None)

    def versions(self, name: str) -> list[SecretVersion]:
        with self._lock:
            key = self._key(name)
            return list(self._versions.get(key, [])) if key else []

    def current_versions(self) -> list[SecretVersion]:
        """The current version of every secret, by name."""
        with self._lock:
            return [self._versions[name][-1] for name in sorted(self._versions, key=str.lower)]

    def _key(self, name: str) -> str | None:
        lowered = name.lower()
        return next((existing for existing in self._versions if existing.lower() == lowered), None)
