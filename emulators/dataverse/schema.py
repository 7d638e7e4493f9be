"""Tables of an emulated environment, loaded from a JSON schema file (format: docs/dataverse-emulator.md).

A table has an entity set name, a logical name, a primary id and primary name column, typed columns, alternate
keys, and two switches: change tracking and bulk actions (CreateMultiple/UpdateMultiple/UpsertMultiple).
Each column gets a compiled "coercer" that turns a JSON value from a request body into the stored value or raises
the error Dataverse answers, so the hot path (bulk upserts) does one dict lookup and one call per value.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from emulators.dataverse import errors

DEMO_SCHEMA = Path(__file__).with_name("demo_schema.json")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# Dataverse money range (MoneyAttributeMetadata.MinValue/MaxValue).
MONEY_RANGE = (-922337203685477.0, 922337203685477.0)

Coercer = Callable[[Any], Any]


class ColumnType(StrEnum):
    STRING = "string"
    MEMO = "memo"
    INT = "int"
    BIGINT = "bigint"
    DECIMAL = "decimal"
    DOUBLE = "double"
    MONEY = "money"
    BOOL = "bool"
    DATETIME = "datetime"
    CHOICE = "choice"
    LOOKUP = "lookup"
    UNIQUEIDENTIFIER = "uniqueidentifier"


EDM_TYPES = {
    ColumnType.STRING: "Edm.String",
    ColumnType.MEMO: "Edm.String",
    ColumnType.INT: "Edm.Int32",
    ColumnType.BIGINT: "Edm.Int64",
    ColumnType.DECIMAL: "Edm.Decimal",
    ColumnType.DOUBLE: "Edm.Double",
    ColumnType.MONEY: "Edm.Decimal",
    ColumnType.BOOL: "Edm.Boolean",
    ColumnType.DATETIME: "Edm.DateTimeOffset",
    ColumnType.CHOICE: "Edm.Int32",
    ColumnType.LOOKUP: "Edm.Guid",
    ColumnType.UNIQUEIDENTIFIER: "Edm.Guid",
}
# AttributeType names as EntityDefinitions/Attributes report them.
ATTRIBUTE_TYPES = {
    ColumnType.STRING: "String",
    ColumnType.MEMO: "Memo",
    ColumnType.INT: "Integer",
    ColumnType.BIGINT: "BigInt",
    ColumnType.DECIMAL: "Decimal",
    ColumnType.DOUBLE: "Double",
    ColumnType.MONEY: "Money",
    ColumnType.BOOL: "Boolean",
    ColumnType.DATETIME: "DateTime",
    ColumnType.CHOICE: "Picklist",
    ColumnType.LOOKUP: "Lookup",
    ColumnType.UNIQUEIDENTIFIER: "Uniqueidentifier",
}
# Types Dataverse allows in alternate keys (PAD/define-alternate-keys-entity.md).
KEY_TYPES = {
    ColumnType.STRING,
    ColumnType.INT,
    ColumnType.BIGINT,
    ColumnType.DECIMAL,
    ColumnType.DATETIME,
    ColumnType.LOOKUP,
    ColumnType.CHOICE,
}
MAX_KEY_COLUMNS = 16  # PAD/define-alternate-keys-entity.md
MAX_KEYS_PER_TABLE = 10

SYSTEM_USER = "systemuser"


class SchemaError(ValueError):
    """The schema file is invalid; the message names the table and column at fault."""


@dataclass(frozen=True)
class LookupTarget:
    table: str  # logical name of the referenced table
    navigation: str  # single-valued navigation property on the referencing table, e.g. parentcustomerid_account
    collection: str | None = None  # collection-valued navigation on the referenced table, e.g. Account_Tasks


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    max_length: int | None = None
    required: bool = False  # enforced like SystemRequired (ApplicationRequired is not enforced by the platform)
    options: Mapping[int, str] = field(default_factory=dict)
    targets: tuple[LookupTarget, ...] = ()
    precision: int | None = None
    read_only: bool = False
    composed_of: tuple[str, ...] = ()  # read-only column computed from others (contact.fullname)

    @property
    def edm_type(self) -> str:
        return EDM_TYPES[self.type]

    @property
    def odata_name(self) -> str:
        """The property name in Web API payloads: lookups are `_<column>_value`."""
        return f"_{self.name}_value" if self.type is ColumnType.LOOKUP else self.name


@dataclass(frozen=True)
class AlternateKey:
    name: str
    columns: tuple[str, ...]
    metadata_id: str


@dataclass
class Table:
    logical_name: str
    schema_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    columns: dict[str, Column]
    keys: list[AlternateKey]
    change_tracking: bool
    bulk_actions: bool
    object_type_code: int
    metadata_id: str
    # Derived:
    navigations: dict[str, tuple[Column, LookupTarget]] = field(default_factory=dict)
    collections: dict[str, tuple[str, Column]] = field(default_factory=dict)  # name -> (child table, lookup column)
    by_odata_name: dict[str, Column] = field(default_factory=dict)
    coercers: dict[str, Coercer] = field(default_factory=dict)  # writable non-lookup columns
    required: tuple[str, ...] = ()
    composed: tuple[Column, ...] = ()
    keys_by_columns: dict[frozenset[str], AlternateKey] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"

    def key_for_columns(self, names: set[str]) -> AlternateKey | None:
        return self.keys_by_columns.get(frozenset(names))


class Schema:
    def __init__(self, tables: list[Table]) -> None:
        self.tables = {t.logical_name: t for t in tables}
        self.by_entity_set = {t.entity_set: t for t in tables}
        self._link()

    @classmethod
    def load(cls, path: Path | None = None) -> Schema:
        source = path or DEMO_SCHEMA
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SchemaError(f"cannot read schema {source}: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        raw_tables = data.get("tables")
        if not isinstance(raw_tables, list) or not raw_tables:
            raise SchemaError('schema needs a non-empty "tables" list')
        return cls([_parse_table(raw) for raw in raw_tables])

    def _link(self) -> None:
        for table in self.tables.values():
            for column in table.columns.values():
                for target in column.targets:
                    if target.table != SYSTEM_USER and target.table not in self.tables:
                        raise SchemaError(f"{table.logical_name}.{column.name}: lookup target {target.table!r} unknown")
                    table.navigations[target.navigation] = (column, target)
                    if target.collection:
                        self.tables[target.table].collections[target.collection] = (table.logical_name, column)
            for key in table.keys:
                for name in key.columns:
                    if name not in table.columns:
                        raise SchemaError(f"{table.logical_name}: key {key.name} names unknown column {name!r}")
                    if table.columns[name].type not in KEY_TYPES:
                        raise SchemaError(f"{table.logical_name}: key column {name!r} has a type keys do not allow")
            table.by_odata_name = {c.odata_name: c for c in table.columns.values()}
            table.keys_by_columns = {frozenset(k.columns): k for k in table.keys}
            table.coercers = {
                c.name: compile_coercer(c, table)
                for c in table.columns.values()
                if not c.read_only and c.type is not ColumnType.LOOKUP
            }
            table.required = tuple(c.name for c in table.columns.values() if c.required)
            table.composed = tuple(c for c in table.columns.values() if c.composed_of)


# --- parsing ---------------------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_NAV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _metadata_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "dataverse-emulator/" + "/".join(parts)))


def _parse_table(raw: Mapping[str, Any]) -> Table:
    name = raw.get("logical_name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SchemaError(f"table logical_name {name!r} must be lowercase letters, digits and underscores")
    where = f"table {name}"
    primary_id = raw.get("primary_id", f"{name}id")
    primary_name = raw.get("primary_name", "name")
    columns: dict[str, Column] = {primary_id: Column(primary_id, ColumnType.UNIQUEIDENTIFIER)}
    for col_name, spec in (raw.get("columns") or {}).items():
        if not _NAME_RE.match(col_name):
            raise SchemaError(f"{where}: column name {col_name!r} must be a lowercase logical name")
        columns[col_name] = _parse_column(where, col_name, spec)
    if primary_name not in columns:
        raise SchemaError(f"{where}: primary_name {primary_name!r} is not one of its columns")
    columns.update(_system_columns(columns))
    keys = [_parse_key(where, name, k) for k in raw.get("keys", [])]
    if len(keys) > MAX_KEYS_PER_TABLE:
        raise SchemaError(f"{where}: at most {MAX_KEYS_PER_TABLE} alternate keys per table")
    return Table(
        logical_name=name,
        schema_name=str(raw.get("schema_name", name)),
        entity_set=str(raw.get("entity_set", f"{name}s")),
        primary_id=primary_id,
        primary_name=primary_name,
        columns=columns,
        keys=keys,
        change_tracking=bool(raw.get("change_tracking", False)),
        bulk_actions=bool(raw.get("bulk_actions", True)),
        object_type_code=int(raw.get("object_type_code", 10000)),
        metadata_id=_metadata_id(name),
    )


def _parse_column(where: str, name: str, spec: Any) -> Column:
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise SchemaError(f"{where}.{name}: column needs an object with a 'type'")
    try:
        col_type = ColumnType(spec["type"])
    except ValueError:
        allowed = ", ".join(t.value for t in ColumnType)
        raise SchemaError(f"{where}.{name}: type {spec['type']!r} is not one of {allowed}") from None
    max_length = spec.get("max_length")
    if col_type is ColumnType.STRING:
        max_length = int(max_length or 100)
    elif col_type is ColumnType.MEMO:
        max_length = int(max_length or 2000)
    options: dict[int, str] = {}
    if col_type is ColumnType.CHOICE:
        raw_options = spec.get("options")
        if isinstance(raw_options, Mapping):
            options = {int(k): str(v) for k, v in raw_options.items()}
        elif isinstance(raw_options, list):
            options = {int(v): str(v) for v in raw_options}
        if not options:
            raise SchemaError(f"{where}.{name}: a choice column needs options")
    targets: tuple[LookupTarget, ...] = ()
    if col_type is ColumnType.LOOKUP:
        targets = _parse_targets(f"{where}.{name}", spec.get("targets"))
    precision = spec.get("precision")
    if col_type in (ColumnType.DECIMAL, ColumnType.MONEY) and precision is None:
        precision = 2
    return Column(
        name=name,
        type=col_type,
        max_length=max_length,
        required=bool(spec.get("required", False)),
        options=options,
        targets=targets,
        precision=precision,
        read_only=bool(spec.get("read_only", False)) or bool(spec.get("composed_of")),
        composed_of=tuple(spec.get("composed_of", ())),
    )


def _parse_targets(where: str, raw: Any) -> tuple[LookupTarget, ...]:
    """`{"account": "parentcustomerid_account"}` or `{"account": {"navigation": ..., "collection": ...}}`."""
    if not isinstance(raw, Mapping) or not raw:
        raise SchemaError(f"{where}: a lookup needs targets: {{table: navigation property}}")
    targets = []
    for table, value in raw.items():
        spec = {"navigation": value} if isinstance(value, str) else dict(value)
        nav = spec.get("navigation")
        if not isinstance(nav, str) or not _NAV_RE.match(nav):
            raise SchemaError(f"{where}: target {table!r} needs a navigation property name")
        targets.append(LookupTarget(table=table, navigation=nav, collection=spec.get("collection")))
    return tuple(targets)


def _parse_key(where: str, table: str, raw: Any) -> AlternateKey:
    if isinstance(raw, list):
        raw = {"columns": raw}
    columns = tuple(raw.get("columns") or ())
    if not columns or len(columns) > MAX_KEY_COLUMNS:
        raise SchemaError(f"{where}: a key needs 1 to {MAX_KEY_COLUMNS} columns")
    key_name = str(raw.get("name") or f"{table}_{'_'.join(columns)}_key")
    return AlternateKey(name=key_name, columns=columns, metadata_id=_metadata_id(table, "key", key_name))


def _system_columns(existing: Mapping[str, Column]) -> dict[str, Column]:
    """Columns every Dataverse table has, read-only to callers."""
    system = {
        "createdon": Column("createdon", ColumnType.DATETIME, read_only=True),
        "modifiedon": Column("modifiedon", ColumnType.DATETIME, read_only=True),
        "versionnumber": Column("versionnumber", ColumnType.BIGINT, read_only=True),
    }
    for name in ("createdby", "modifiedby", "createdonbehalfby", "modifiedonbehalfby", "ownerid"):
        system[name] = Column(name, ColumnType.LOOKUP, targets=(LookupTarget(SYSTEM_USER, name),), read_only=True)
    return {k: v for k, v in system.items() if k not in existing}


# --- value coercion (request JSON -> stored value) ---------------------------------------------------------------


def compile_coercer(column: Column, table: Table) -> Coercer:
    """A function validating one JSON value for `column`, raising the DataverseError Dataverse would answer."""
    entity_set, logical, edm = table.entity_set, table.logical_name, column.edm_type

    def wrong_kind(value: Any) -> errors.DataverseError:
        if isinstance(value, str):
            return errors.cannot_convert_literal(entity_set, value, edm)
        return errors.cannot_convert_primitive(entity_set, edm)

    kind = column.type
    if kind in (ColumnType.STRING, ColumnType.MEMO):
        limit = column.max_length or 0

        def coerce_string(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not str:
                raise wrong_kind(value)
            if len(value) > limit:
                raise errors.max_length(column.name, logical, limit)
            return value

        return coerce_string
    if kind in (ColumnType.INT, ColumnType.BIGINT, ColumnType.CHOICE):
        lo, hi = INT64 if kind is ColumnType.BIGINT else INT32
        options = column.options

        def coerce_int(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not int:
                if type(value) is float and value.is_integer():
                    value = int(value)
                else:
                    raise wrong_kind(value)
            if not lo <= value <= hi:
                raise errors.cannot_convert_literal(entity_set, str(value), edm)
            if options and value not in options:
                raise errors.option_out_of_range(value, column.name, logical, sorted(options))
            return value

        return coerce_int
    if kind in (ColumnType.DECIMAL, ColumnType.MONEY, ColumnType.DOUBLE):
        digits = column.precision
        bounds = MONEY_RANGE if kind is ColumnType.MONEY else None

        def coerce_number(value: Any) -> Any:
            if value is None:
                return None
            if type(value) not in (int, float):
                raise wrong_kind(value)
            if bounds and not bounds[0] <= value <= bounds[1]:
                raise errors.cannot_convert_literal(entity_set, str(value), edm)
            # Dataverse stores decimal/money rounded to the column's precision.
            return round(value, digits) if digits is not None and type(value) is float else value

        return coerce_number
    if kind is ColumnType.BOOL:

        def coerce_bool(value: Any) -> Any:
            if value is None or type(value) is bool:
                return value
            raise wrong_kind(value)

        return coerce_bool
    if kind is ColumnType.DATETIME:

        def coerce_datetime(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not str:
                raise wrong_kind(value)
            parsed = parse_datetime(value)
            if parsed is None:
                raise errors.cannot_convert_literal(entity_set, value, edm)
            return parsed

        return coerce_datetime
    if kind is ColumnType.UNIQUEIDENTIFIER:

        def coerce_guid(value: Any) -> Any:
            if type(value) is not str or not GUID_RE.match(value):
                raise wrong_kind(value)
            return value.lower()

        return coerce_guid
    raise SchemaError(f"no coercer for {kind}")  # pragma: no cover - lookups are bound, not coerced


def parse_datetime(text: str) -> str | None:
    """ISO 8601 date or date-time -> Dataverse's UTC form `YYYY-MM-DDTHH:MM:SSZ`; None if not a date."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
