"""What the client needs to know about a table: entity set, primary id, alternate keys, bulk support.

From DATAVERSE_ENVIRONMENTS (`TableConfig`) where given, else discovered once from
`EntityDefinitions(LogicalName='<table>')?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$expand=Keys(
$select=KeyAttributes)` (define-alternate-keys-entity; webapi/query-metadata-web-api) and cached per environment.
Discovery is single-flight per table: on a cold process several invocations for one table arrive together, and
they wait for the one request in flight instead of each sending their own. A failed discovery is handed to the
callers that waited for it and not kept: the next caller asks again.
Bulk support is learned by trying: a table whose bulk action is refused is remembered as "no bulk" (the docs'
probe via sdkmessagefilters does not cover UpsertMultiple, bulk-operations.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from shared.config.settings import TableConfig
from shared.dataverse.errors import DataverseError


@dataclass
class TableMetadata:
    logical_name: str
    entity_set: str
    primary_id: str
    alternate_keys: list[list[str]] = field(default_factory=list)
    bulk: bool | None = None  # None: not known yet, try bulk actions first

    @property
    def odata_type(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"


class MetadataUnavailable(Exception):
    def __init__(self, table: str, error: DataverseError) -> None:
        super().__init__(f"metadata of table {table!r}: {error.message}")
        self.table = table
        self.error = error


Discover = Callable[[str, float | None], TableMetadata]
"""Fetches a table's definition from the environment (before the deadline, if given); raises MetadataUnavailable."""


class MetadataCache:
    """The tables of one environment (one DataverseClient), so a table name is the (environment, table) key."""

    def __init__(self, configured: dict[str, TableConfig], discover: Discover) -> None:
        self._configured = configured
        self._discover = discover
        self._tables: dict[str, TableMetadata] = {}
        self._in_flight: dict[str, Future[TableMetadata]] = {}
        self._lock = threading.Lock()

    def get(self, table: str, deadline: float | None = None) -> TableMetadata:
        """The table's metadata; raises MetadataUnavailable (also when `deadline` passes while waiting)."""
        with self._lock:
            known = self._tables.get(table)
            if known is not None:
                return known
            flight = self._in_flight.get(table)
            leading = flight is None
            if flight is None:
                flight = self._in_flight[table] = Future()
        if not leading:
            return _wait_for(flight, table, deadline)
        try:
            metadata = self._load(table, deadline)
        except BaseException as exc:
            with self._lock:
                del self._in_flight[table]
            flight.set_exception(exc)
            raise
        with self._lock:
            self._tables[table] = metadata
            del self._in_flight[table]
        flight.set_result(metadata)
        return metadata

    def mark_no_bulk(self, table: str) -> None:
        with self._lock:
            if table in self._tables:
                self._tables[table].bulk = False

    def _load(self, table: str, deadline: float | None) -> TableMetadata:
        config = self._configured.get(table)
        if config is not None and config.entity_set and config.primary_id:
            return TableMetadata(table, config.entity_set, config.primary_id, list(config.alternate_keys), config.bulk)
        return self._merge(self._discover(table, deadline), config)

    @staticmethod
    def _merge(discovered: TableMetadata, config: TableConfig | None) -> TableMetadata:
        if config is None:
            return discovered
        return TableMetadata(
            discovered.logical_name,
            config.entity_set or discovered.entity_set,
            config.primary_id or discovered.primary_id,
            list(config.alternate_keys) or discovered.alternate_keys,
            config.bulk if config.bulk is not None else discovered.bulk,
        )


def _wait_for(flight: Future[TableMetadata], table: str, deadline: float | None) -> TableMetadata:
    """The in-flight discovery's result or failure; never waits past the caller's own deadline."""
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        return flight.result(timeout)
    except TimeoutError:  # concurrent.futures.TimeoutError is the builtin one since Python 3.11
        if flight.done():  # finished meanwhile, or the discovery itself raised a TimeoutError
            return flight.result()
        spent = DataverseError(None, None, f"time budget of the call spent waiting for the metadata of {table!r}")
        raise MetadataUnavailable(table, spent) from None
