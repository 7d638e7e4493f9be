"""What the client needs to know about a table: entity set, primary id, alternate keys, bulk support.

From DATAVERSE_ENVIRONMENTS (`TableConfig`) where given, else discovered once from
`EntityDefinitions(LogicalName='<table>')?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$expand=Keys(
$select=KeyAttributes)` (define-alternate-keys-entity; webapi/query-metadata-web-api) and cached per environment.
Bulk support is learned by trying: a table whose bulk action is refused is remembered as "no bulk" (the docs'
probe via sdkmessagefilters does not cover UpsertMultiple, bulk-operations.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
    def __init__(self, configured: dict[str, TableConfig], discover: Discover) -> None:
        self._configured = configured
        self._discover = discover
        self._tables: dict[str, TableMetadata] = {}
        self._lock = threading.Lock()

    def get(self, table: str, deadline: float | None = None) -> TableMetadata:
        with self._lock:
            known = self._tables.get(table)
        if known is not None:
            return known
        config = self._configured.get(table)
        if config is not None and config.entity_set and config.primary_id:
            metadata = TableMetadata(
                table, config.entity_set, config.primary_id, list(config.alternate_keys), config.bulk
            )
        else:
            metadata = self._merge(self._discover(table, deadline), config)
        with self._lock:
            return self._tables.setdefault(table, metadata)

    def mark_no_bulk(self, table: str) -> None:
        with self._lock:
            if table in self._tables:
                self._tables[table].bulk = False

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
