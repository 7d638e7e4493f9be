"""Every app setting the app reads, in one place.

`Settings.from_environ()` reads the process environment (Azure Functions exposes app settings, and locally the
`Values` of local.settings.json, as environment variables), validates everything, and raises `ConfigError`
naming the setting at fault. No other module reads os.environ for app settings. The names here, in
local.settings.sample.json and in infra/ must agree (tests check it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(ValueError):
    """A setting is missing or invalid. The message names the setting and never echoes secret values."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"app setting {setting}: {problem}")
        self.setting = setting
        self.problem = problem


# --- Dataverse environments (DATAVERSE_ENVIRONMENTS, JSON) -------------------------------------------------

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")


class TableConfig(BaseModel):
    """A table the app may write. Unset fields are discovered from EntityDefinitions on first use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alternate_keys: list[Annotated[list[str], Field(min_length=1, max_length=16)]] = Field(default_factory=list)
    entity_set: str | None = None
    primary_id: str | None = None
    bulk: bool | None = None  # None: use bulk actions, fall back to $batch if the table does not support them

    @field_validator("alternate_keys")
    @classmethod
    def _columns_are_logical_names(cls, keys: list[list[str]]) -> list[list[str]]:
        for key in keys:
            for column in key:
                if not _COLUMN.match(column):
                    raise ValueError(f"{column!r} is not a column logical name (lowercase, digits, underscore)")
        return keys


class EnvironmentConfig(BaseModel):
    """One Dataverse environment (organization) and what the app may do there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    tenant_id: str
    tables: dict[str, TableConfig] = Field(min_length=1)
    max_parallelism: int | None = Field(default=None, ge=1, le=64)
    bypass_business_logic: str | None = None  # e.g. "CustomSync,CustomAsync" (needs prvBypassCustomBusinessLogic)

    @field_validator("url")
    @classmethod
    def _https_origin(cls, url: str) -> str:
        url = url.rstrip("/")
        if not re.match(r"^https://[^/?#\s]+$", url):
            raise ValueError("must be the environment's https origin, e.g. https://contoso.crm.dynamics.com")
        return url

    @field_validator("tenant_id")
    @classmethod
    def _tenant_guid(cls, tenant_id: str) -> str:
        if not _GUID.match(tenant_id):
            raise ValueError("must be the customer's Entra tenant id (a GUID)")
        return tenant_id.lower()

    @field_validator("tables")
    @classmethod
    def _table_names(cls, tables: dict[str, TableConfig]) -> dict[str, TableConfig]:
        for name in tables:
            if not _COLUMN.match(name):
                raise ValueError(f"{name!r} is not a table logical name (lowercase, e.g. account)")
        return tables


def _parse_environments(raw: str) -> dict[str, EnvironmentConfig]:
    setting = "DATAVERSE_ENVIRONMENTS"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(setting, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(setting, 'must be a JSON object of environments, e.g. {"contoso": {"url": ...}}')
    environments: dict[str, EnvironmentConfig] = {}
    for name, value in data.items():
        if not _NAME.match(name):
            raise ConfigError(setting, f"environment name {name!r} must be letters, digits, '_', '.', '-'")
        try:
            environments[name] = EnvironmentConfig.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(p) for p in (name, *first["loc"]))
            raise ConfigError(setting, f"{path}: {first['msg']}") from None
    return environments


# --- Queue connection ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueConnection:
    """The queues' connection, named like the trigger's `connection` (SYNC_STORAGE).

    Either a connection string (locally: Azurite), or an identity-based connection as the host reads it:
    `SYNC_STORAGE__queueServiceUri`, `SYNC_STORAGE__credential=managedidentity`, `SYNC_STORAGE__clientId`.
    https://learn.microsoft.com/azure/azure-functions/functions-reference#common-properties-for-identity-based-connections
    """

    connection_string: str | None = field(default=None, repr=False)
    queue_service_uri: str | None = None
    client_id: str | None = None


CONNECTION = "SYNC_STORAGE"


def _parse_queue_connection(env: Mapping[str, str]) -> QueueConnection:
    conn = env.get(CONNECTION, "").strip()
    if conn:
        if "AccountName=" not in conn and conn != "UseDevelopmentStorage=true":
            raise ConfigError(CONNECTION, "is not a storage connection string (expected AccountName=...)")
        return QueueConnection(connection_string=conn)
    uri = env.get(f"{CONNECTION}__queueServiceUri", "").strip()
    if not uri:
        raise ConfigError(CONNECTION, f"set it (connection string) or {CONNECTION}__queueServiceUri (identity)")
    if not uri.startswith("https://"):
        raise ConfigError(f"{CONNECTION}__queueServiceUri", "must be an https URL")
    credential = env.get(f"{CONNECTION}__credential", "managedidentity").strip().lower()
    if credential != "managedidentity":
        raise ConfigError(f"{CONNECTION}__credential", "only 'managedidentity' is supported")
    return QueueConnection(queue_service_uri=uri, client_id=env.get(f"{CONNECTION}__clientId") or None)


# --- Scalars ---------------------------------------------------------------------------------------------------


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(name, "is required but missing or empty")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be between {lo} and {hi}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


def _https_url(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip() or default
    if not value:
        raise ConfigError(name, "is required but missing or empty")
    if not value.startswith("https://"):
        raise ConfigError(name, "must be an https URL")
    return value.rstrip("/")


def _guid(env: Mapping[str, str], name: str, required: bool = True) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        if required:
            raise ConfigError(name, "is required but missing or empty")
        return None
    if not _GUID.match(value):
        raise ConfigError(name, "must be a GUID (an application or client id)")
    return value.lower()


# --- Settings --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Validated settings. Field comments give the app setting each comes from."""

    queue_connection: QueueConnection  # SYNC_STORAGE (or SYNC_STORAGE__queueServiceUri/__credential/__clientId)
    managed_identity_client_id: str | None  # AZURE_CLIENT_ID: user-assigned managed identity (Key Vault access)
    keyvault_url: str  # KEYVAULT_URL
    keyvault_verify_challenge_resource: bool  # KEYVAULT_VERIFY_CHALLENGE_RESOURCE (false only for the emulator)
    dataverse_client_id: str  # DATAVERSE_CLIENT_ID: the app registration that is the Dataverse application user
    certificate_name: str  # DATAVERSE_CERT_NAME: Key Vault certificate (its secret holds PFX or PEM)
    certificate_password_secret: str | None  # DATAVERSE_CERT_PASSWORD_SECRET: secret holding the PFX password
    send_certificate_chain: bool  # DATAVERSE_SEND_CERT_CHAIN: x5c header (subject name/issuer auth)
    authority_host: str  # DATAVERSE_AUTHORITY_HOST: Entra ID host (sovereign clouds, or the local emulator)
    environments: dict[str, EnvironmentConfig]  # DATAVERSE_ENVIRONMENTS
    ca_bundle: str | None  # LOCAL_CLOUD_CA_BUNDLE: extra CA to trust (local cloud only; never set in Azure)
    bulk_chunk_size: int  # DATAVERSE_BULK_CHUNK_SIZE
    max_parallelism: int  # DATAVERSE_MAX_PARALLELISM: upper bound; x-ms-dop-hint may lower it
    request_timeout_seconds: int  # DATAVERSE_REQUEST_TIMEOUT_SECONDS
    time_budget_seconds: int  # SYNC_TIME_BUDGET_SECONDS: per invocation, below the function timeout
    certificate_refresh_seconds: int  # CERT_REFRESH_SECONDS: how often Key Vault is asked for a new version
    certificate_warning_days: int  # CERT_EXPIRY_WARNING_DAYS
    dependency_retry_limit: int  # DEPENDENCY_RETRY_LIMIT: re-tries of a record whose lookup target is missing
    dependency_retry_delay_seconds: int  # DEPENDENCY_RETRY_DELAY_SECONDS
    poison_requeue_limit: int  # POISON_REQUEUE_LIMIT: re-queues of a poisoned message with a transient cause
    poison_requeue_delay_seconds: int  # POISON_REQUEUE_DELAY_SECONDS
    bulk_drain_max_records: int  # BULK_DRAIN_MAX_RECORDS: per round of the bulk drain (a run drains in rounds)

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        environments = _parse_environments(_required(env, "DATAVERSE_ENVIRONMENTS"))
        ca_bundle = env.get("LOCAL_CLOUD_CA_BUNDLE", "").strip() or None
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ConfigError("LOCAL_CLOUD_CA_BUNDLE", f"file not found: {ca_bundle}")
        timeout = _int(env, "DATAVERSE_REQUEST_TIMEOUT_SECONDS", 120, 5, 600)
        budget = _int(env, "SYNC_TIME_BUDGET_SECONDS", 240, 10, 3600)
        if timeout > budget:
            raise ConfigError("DATAVERSE_REQUEST_TIMEOUT_SECONDS", "must not exceed SYNC_TIME_BUDGET_SECONDS")
        return cls(
            queue_connection=_parse_queue_connection(env),
            managed_identity_client_id=_guid(env, "AZURE_CLIENT_ID", required=False),
            keyvault_url=_https_url(env, "KEYVAULT_URL"),
            keyvault_verify_challenge_resource=_bool(env, "KEYVAULT_VERIFY_CHALLENGE_RESOURCE", True),
            dataverse_client_id=_guid(env, "DATAVERSE_CLIENT_ID") or "",
            certificate_name=_required(env, "DATAVERSE_CERT_NAME"),
            certificate_password_secret=env.get("DATAVERSE_CERT_PASSWORD_SECRET", "").strip() or None,
            send_certificate_chain=_bool(env, "DATAVERSE_SEND_CERT_CHAIN", False),
            authority_host=_https_url(env, "DATAVERSE_AUTHORITY_HOST", "https://login.microsoftonline.com"),
            environments=environments,
            ca_bundle=ca_bundle,
            # Bulk operations doc: "1,000 records per request is a reasonable place to start" (standard tables).
            bulk_chunk_size=_int(env, "DATAVERSE_BULK_CHUNK_SIZE", 1000, 1, 1000),
            max_parallelism=_int(env, "DATAVERSE_MAX_PARALLELISM", 8, 1, 52),
            request_timeout_seconds=timeout,
            time_budget_seconds=budget,
            certificate_refresh_seconds=_int(env, "CERT_REFRESH_SECONDS", 900, 1, 86400),
            certificate_warning_days=_int(env, "CERT_EXPIRY_WARNING_DAYS", 30, 1, 365),
            dependency_retry_limit=_int(env, "DEPENDENCY_RETRY_LIMIT", 5, 0, 100),
            dependency_retry_delay_seconds=_int(env, "DEPENDENCY_RETRY_DELAY_SECONDS", 60, 0, 86400),
            poison_requeue_limit=_int(env, "POISON_REQUEUE_LIMIT", 3, 0, 100),
            poison_requeue_delay_seconds=_int(env, "POISON_REQUEUE_DELAY_SECONDS", 300, 0, 604800),
            bulk_drain_max_records=_int(env, "BULK_DRAIN_MAX_RECORDS", 5000, 1, 100000),
        )


SETTING_NAMES: tuple[str, ...] = (
    "SYNC_STORAGE",
    "AZURE_CLIENT_ID",
    "KEYVAULT_URL",
    "KEYVAULT_VERIFY_CHALLENGE_RESOURCE",
    "DATAVERSE_CLIENT_ID",
    "DATAVERSE_CERT_NAME",
    "DATAVERSE_CERT_PASSWORD_SECRET",
    "DATAVERSE_SEND_CERT_CHAIN",
    "DATAVERSE_AUTHORITY_HOST",
    "DATAVERSE_ENVIRONMENTS",
    "LOCAL_CLOUD_CA_BUNDLE",
    "DATAVERSE_BULK_CHUNK_SIZE",
    "DATAVERSE_MAX_PARALLELISM",
    "DATAVERSE_REQUEST_TIMEOUT_SECONDS",
    "SYNC_TIME_BUDGET_SECONDS",
    "CERT_REFRESH_SECONDS",
    "CERT_EXPIRY_WARNING_DAYS",
    "DEPENDENCY_RETRY_LIMIT",
    "DEPENDENCY_RETRY_DELAY_SECONDS",
    "POISON_REQUEUE_LIMIT",
    "POISON_REQUEUE_DELAY_SECONDS",
    "BULK_DRAIN_MAX_RECORDS",
)
"""Settings read by `Settings.from_environ` (besides the host's own: AzureWebJobsStorage, schedules below)."""

SCHEDULE_SETTINGS: tuple[str, ...] = ("BULK_DRAIN_SCHEDULE", "HEALTH_CHECK_SCHEDULE")
"""NCRONTAB schedules the host resolves from `%NAME%` in function_app.py's timer bindings."""
