"""The Dataverse Web API client of one environment: a thin face over the pipeline.

client = DataverseClient.for_environment("contoso", settings, token_provider)
client.whoami()                                  # health check
for page in client.pages("accounts", {"$select": "name"}): ...   # follows @odata.nextLink
client.write(writes, deadline=time.monotonic() + 60)            # -> one WriteResult per write
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from shared.config.settings import EnvironmentConfig, Settings
from shared.dataverse.concurrency import AdaptiveConcurrency
from shared.dataverse.errors import DataverseRequestFailed
from shared.dataverse.metadata import MetadataCache, MetadataUnavailable, TableMetadata
from shared.dataverse.pipeline import HttpRequest, HttpResponse, Pipeline, Send
from shared.dataverse.policies import (
    AuthPolicy,
    ConcurrencyPolicy,
    HeadersPolicy,
    LoggingPolicy,
    RequestStats,
    RetryPolicy,
    TokenProvider,
    fetch_token,
)
from shared.dataverse.retry import RetryOptions
from shared.dataverse.transport import RequestsTransport
from shared.dataverse.writes import WriteRun
from shared.sync.ports import RecordWrite, WriteResult

API_VERSION = "v9.2"  # compose-http-requests-handle-errors: "The current version is 9.2"
DEFAULT_PAGE_SIZE = 5000  # page-results: default and maximum page size


@dataclass(frozen=True)
class ClientOptions:
    """Every knob of the client (documented in docs/client.md). Defaults come from Settings where it has one."""

    bulk_chunk_size: int = 1000  # records per CreateMultiple/UpdateMultiple/UpsertMultiple (bulk-operations)
    batch_size: int = 100  # operations per $batch (tables without bulk actions, deletes; max 1000)
    isolation_leaf_size: int = 10  # a failed bulk piece this small is sent as $batch to get per-record results
    max_parallelism: int = 8  # upper bound of concurrent requests; x-ms-dop-hint and 429s lower it
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 120.0
    retry: RetryOptions = field(default_factory=RetryOptions)
    bypass_business_logic: str | None = None  # MSCRM.BypassBusinessLogicExecution: CustomSync,CustomAsync
    bypass_custom_plugins: bool = False  # MSCRM.BypassCustomPluginExecution: true (sync plug-ins)
    suppress_flows: bool = False  # MSCRM.SuppressCallbackRegistrationExpanderJob: true (Power Automate)
    resolve_batch_size: int = 50  # keys per $filter when resolving ids of keys that break URLs
    ca_bundle: str | None = None  # LOCAL_CLOUD_CA_BUNDLE; None: default TLS verification

    @classmethod
    def from_settings(cls, settings: Settings, environment: EnvironmentConfig, **overrides: Any) -> ClientOptions:
        values: dict[str, Any] = {
            "bulk_chunk_size": settings.bulk_chunk_size,
            "max_parallelism": environment.max_parallelism or settings.max_parallelism,
            "read_timeout_seconds": float(settings.request_timeout_seconds),
            "bypass_business_logic": environment.bypass_business_logic,
            "ca_bundle": settings.ca_bundle,
        }
        values.update(overrides)
        return cls(**values)

    def write_headers(self) -> dict[str, str]:
        """Optional parameters applied to every write (optional-parameters; bypass-custom-business-logic)."""
        headers: dict[str, str] = {}
        if self.bypass_business_logic:
            headers["MSCRM.BypassBusinessLogicExecution"] = self.bypass_business_logic
        if self.bypass_custom_plugins:
            headers["MSCRM.BypassCustomPluginExecution"] = "true"
        if self.suppress_flows:
            headers["MSCRM.SuppressCallbackRegistrationExpanderJob"] = "true"
        return headers


@dataclass(frozen=True)
class WhoAmI:
    user_id: str
    business_unit_id: str
    organization_id: str
    dop_hint: int | None


class DataverseClient:
    def __init__(
        self,
        name: str,
        config: EnvironmentConfig,
        token_provider: TokenProvider,
        options: ClientOptions | None = None,
        *,
        transport: Send | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.options = options or ClientOptions()
        self.service_root = f"{config.url}/api/data/{API_VERSION}"
        self.service_path = f"/api/data/{API_VERSION}"
        self.stats = RequestStats()
        self.limiter = AdaptiveConcurrency(self.options.max_parallelism)
        self._token_provider = token_provider
        self._transport = transport or RequestsTransport(
            pool_size=self.options.max_parallelism + 2,
            ca_bundle=self.options.ca_bundle,
            connect_timeout=self.options.connect_timeout_seconds,
            read_timeout=self.options.read_timeout_seconds,
        )
        self._pipeline = Pipeline(
            [
                HeadersPolicy(),
                RetryPolicy(self.options.retry),
                AuthPolicy(token_provider),
                ConcurrencyPolicy(self.limiter),
                LoggingPolicy(name, self.stats),
            ],
            self._transport,
        )
        self.metadata = MetadataCache(dict(config.tables), self._discover_table)

    @classmethod
    def for_environment(
        cls, name: str, settings: Settings, token_provider: TokenProvider, **overrides: Any
    ) -> DataverseClient:
        config = settings.environments[name]
        return cls(name, config, token_provider, ClientOptions.from_settings(settings, config, **overrides))

    # --- raw requests --------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        kind: str = "",
    ) -> HttpResponse:
        """Send one request through the pipeline. `path` is relative to the service root, or an absolute URL
        of this environment (a nextLink). JSON `body` or `raw_body`."""
        url = path if path.startswith("https://") else f"{self.service_root}/{path}"
        all_headers = dict(headers or {})
        data = raw_body
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            all_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        request = HttpRequest(
            method,
            url,
            deadline if deadline is not None else time.monotonic() + self.options.read_timeout_seconds,
            all_headers,
            data,
            kind or f"{method} {_resource_of(path)}",
        )
        return self._pipeline.send(request)

    def check_token(self) -> None:
        """Ask the token provider once, so that an environment without a token fails fast and whole (raises
        EnvironmentUnavailable)."""
        fetch_token(self._token_provider)

    # --- reads -----------------------------------------------------------------------------------------------

    def whoami(self, *, deadline: float | None = None) -> WhoAmI:
        """`GET WhoAmI` (the health check; also returns x-ms-dop-hint, send-parallel-requests)."""
        response = self.request("GET", "WhoAmI", deadline=deadline, kind="WhoAmI")
        data = _ok_json(response)
        hint = response.headers.get("x-ms-dop-hint")
        return WhoAmI(
            str(data["UserId"]),
            str(data["BusinessUnitId"]),
            str(data["OrganizationId"]),
            int(hint) if hint and hint.isdecimal() else None,
        )

    def pages(
        self,
        entity_set: str,
        params: Mapping[str, str] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        deadline: float | None = None,
        extra_prefer: Sequence[str] = (),
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows page by page, following `@odata.nextLink` unmodified with the same `Prefer: odata.maxpagesize`
        (page-results). Raises DataverseRequestFailed on an error."""
        prefer = ", ".join([f"odata.maxpagesize={page_size}", *extra_prefer])
        url: str | None = f"{entity_set}?{_query(params)}" if params else entity_set
        while url is not None:
            response = self.request("GET", url, deadline=deadline, headers={"Prefer": prefer}, kind=f"GET {entity_set}")
            data = _ok_json(response)
            yield list(data.get("value", []))
            url = data.get("@odata.nextLink")

    def _discover_table(self, table: str, deadline: float | None = None) -> TableMetadata:
        path = (
            f"EntityDefinitions(LogicalName='{table}')?$select=LogicalName,EntitySetName,PrimaryIdAttribute"
            "&$expand=Keys($select=KeyAttributes)"
        )
        response = self.request("GET", path, deadline=deadline, kind="GET EntityDefinitions")
        if not response.ok:
            assert response.error is not None
            raise MetadataUnavailable(table, response.error)
        data = response.json()
        keys = [list(k.get("KeyAttributes", [])) for k in data.get("Keys", []) or []]
        return TableMetadata(table, data["EntitySetName"], data["PrimaryIdAttribute"], keys)

    # --- writes ----------------------------------------------------------------------------------------------

    def write(self, writes: Sequence[RecordWrite], *, deadline: float) -> list[WriteResult]:
        """One result per write (same order). See shared/dataverse/writes.py for how records travel."""
        return WriteRun(self, writes, deadline).execute()

    def close(self) -> None:
        close = getattr(self._transport, "close", None)
        if callable(close):
            close()


def _ok_json(response: HttpResponse) -> Any:
    if not response.ok:
        assert response.error is not None
        raise DataverseRequestFailed(response.error)
    return response.json()


def _resource_of(path: str) -> str:
    """`accounts(accountnumber='x')?$select=a` -> `accounts`: a label for logs without key values."""
    return re.split(r"[(?]", path.rsplit("/api/data/", 1)[-1], maxsplit=1)[0]


def _query(params: Mapping[str, str]) -> str:
    # OData system query options keep their `$`; values are percent-encoded (filter-rows: encode $ & + , / : ; = ?)
    return urlencode(params, quote_via=quote, safe="$'(),")
