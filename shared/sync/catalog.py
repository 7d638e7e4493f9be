"""Checks of records against the configured environments and tables (DATAVERSE_ENVIRONMENTS).

What the contract alone cannot know: which environment a record goes to, whether its table may be written
there, and whether its key is an alternate key of that table. Tables configured without `alternate_keys`
(discovered by the Dataverse client at run time) accept any key columns here; Dataverse has the last word.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from shared.config.settings import EnvironmentConfig, TableConfig
from shared.sync.contract import GUID_PATTERN, Record
from shared.sync.ports import JsonValue, KeyValue, Lookup, RecordWrite
from shared.sync.problems import Code, Problem, join_path, quote


class Catalog:
    """The environments and tables records may name, and the keys that identify their rows."""

    def __init__(self, environments: Mapping[str, EnvironmentConfig]) -> None:
        self._environments = dict(environments)

    @property
    def environment_names(self) -> list[str]:
        return sorted(self._environments)

    def default_environment(self) -> str | None:
        """The environment a record without one goes to: the only one configured, if there is one."""
        return next(iter(self._environments)) if len(self._environments) == 1 else None

    def resolve(self, record: Record, path: tuple[str | int, ...] = ()) -> Record | Problem:
        """The record with its environment filled in and key columns dropped from `data`, or the problem."""
        found = self._environment(record, path)
        if isinstance(found, Problem):
            return found
        environment, config = found
        table = config.tables.get(record.table)
        if table is None:
            return Problem(
                Code.UNKNOWN_TABLE,
                f"table {quote(record.table)} may not be written in {environment} "
                f"(allowed: {', '.join(sorted(config.tables))})",
                join_path(*path, "table"),
            )
        problem = self._check_keys(record, config, table, path)
        if problem is not None:
            return problem
        data = _without_repeated_key(record.data, record.key)
        if isinstance(data, Problem):
            return _at(data, path, "data")
        if environment == record.environment and data is record.data:
            return record
        return _resolved(record, environment, data)

    def _environment(self, record: Record, path: tuple[str | int, ...]) -> tuple[str, EnvironmentConfig] | Problem:
        environment = record.environment or self.default_environment()
        if environment is None:
            return Problem(
                Code.ENVIRONMENT_REQUIRED,
                f"name the environment; configured: {', '.join(self.environment_names)}",
                join_path(*path, "environment"),
            )
        config = self._environments.get(environment)
        if config is None:
            return Problem(
                Code.UNKNOWN_ENVIRONMENT,
                f"{quote(environment)} is not configured (configured: {', '.join(self.environment_names)})",
                join_path(*path, "environment"),
            )
        return environment, config

    def _check_keys(
        self, record: Record, config: EnvironmentConfig, table: TableConfig, path: tuple[str | int, ...]
    ) -> Problem | None:
        if record.key:
            problem = key_problem(record.table, record.key, table)
            if problem is not None:
                return _at(problem, path, "key")
        for name, lookup in record.lookups.items():
            target = config.tables.get(lookup.table)
            if target is None:
                continue  # e.g. systemuser, transactioncurrency: looked up, never written; Dataverse checks
            problem = key_problem(lookup.table, lookup.key, target)
            if problem is not None:
                return _at(problem, path, "lookups", name, "key")
        return None


def _at(problem: Problem, path: tuple[str | int, ...], *where: str) -> Problem:
    """The problem with its path made absolute (paths are only built when there is a problem: it is rare)."""
    inner = problem.path
    full = join_path(*path, *where)
    if inner:
        full = f"{full}{'' if inner.startswith('[') else '.'}{inner}" if full else inner
    return dataclasses.replace(problem, path=full)


def _resolved(record: Record, environment: str, data: Mapping[str, JsonValue]) -> Record:
    """`dataclasses.replace` without its per-call introspection (this runs once per record)."""
    return Record(
        ref=record.ref,
        index=record.index,
        raw=record.raw,
        environment=environment,
        table=record.table,
        operation=record.operation,
        key=record.key,
        data=data,
        lookups=record.lookups,
        source_id=record.source_id,
        sequence=record.sequence,
        caller_object_id=record.caller_object_id,
        delivery=record.delivery,
    )


def primary_id_column(table_name: str, table: TableConfig) -> str:
    """Configured, or the Dataverse convention `<logical name>id` (accountid). Activities use activityid:
    configure `primary_id` for them."""
    return table.primary_id or f"{table_name}id"


def key_problem(table_name: str, key: Mapping[str, KeyValue], table: TableConfig) -> Problem | None:
    """Whether `key` identifies a row of the table; the problem's path is relative to the key."""
    columns = set(key)
    primary = primary_id_column(table_name, table)
    if columns == {primary}:
        value = key[primary]
        if isinstance(value, str) and GUID_PATTERN.match(value):
            return None
        return Problem(Code.INVALID_PRIMARY_ID, f"{primary} must be a GUID", join_path(primary))
    if not table.alternate_keys or any(columns == set(alternate) for alternate in table.alternate_keys):
        return None
    known = " or ".join("[" + ", ".join(k) + "]" for k in table.alternate_keys)
    return Problem(
        Code.NOT_AN_ALTERNATE_KEY,
        f"[{', '.join(sorted(quote(c) for c in columns))}] is not an alternate key of {table_name}; "
        f"use {known} or the primary id {primary}",
    )


def _without_repeated_key(
    data: Mapping[str, JsonValue], key: Mapping[str, KeyValue]
) -> Mapping[str, JsonValue] | Problem:
    """Key columns repeated in `data` are dropped when equal (UpsertMultiple answers 400 when a key column is in
    both the body and @odata.id, PowerPlatform-DataverseClient-Python#127) and refused when different (an
    upsert cannot change a row's key: use-upsert-insert-update-record)."""
    repeated = [column for column in key if column in data]
    if not repeated:
        return data
    for column in repeated:
        if data[column] != key[column] or type(data[column]) is not type(key[column]):
            return Problem(
                Code.KEY_CONFLICT,
                f"sets key column {column} to another value than the key (a key cannot be changed by upsert)",
                column,
            )
    return {name: value for name, value in data.items() if name not in key}


def to_write(record: Record) -> RecordWrite:
    """The writer's view of a resolved record."""
    return RecordWrite(
        ref=record.ref,
        table=record.table,
        operation=record.operation,
        key=record.key,
        data=record.data,
        lookups=record.lookups,
        caller_object_id=record.caller_object_id,
    )


CanonicalKey = tuple[tuple[str, object], ...]
RowIdentity = tuple[str, str, CanonicalKey]
"""The row a record or lookup addresses, as the planner compares rows: (environment, table, canonical key)."""


def lookup_identity(environment: str, lookup: Lookup) -> RowIdentity:
    return environment, lookup.table, canonical_key(lookup.key)


def record_identity(record: Record) -> RowIdentity | None:
    """The row a record addresses (environment, table, canonical key), or None for a create without key."""
    if not record.key or record.environment is None:
        return None
    return record.environment, record.table, canonical_key(record.key)


def canonical_key(key: Mapping[str, KeyValue]) -> CanonicalKey:
    """Key values compared closer to how Dataverse does: strings case-insensitively (its default database
    collation is case- and accent-insensitive; only case is folded here, so keys differing by accents alone count
    as different rows), numbers by value (1 == 1.0), booleans apart from numbers."""
    return tuple(sorted((column, _canonical_value(value)) for column, value in key.items()))


def _canonical_value(value: KeyValue) -> object:
    kind = type(value)
    if kind is str:
        return ("s", value.casefold())  # type: ignore[union-attr]
    return ("b" if kind is bool else "n", value)
