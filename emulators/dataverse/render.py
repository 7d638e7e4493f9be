"""Request/response values of the Web API layer and how rows are written as OData JSON.

Row JSON follows the Web API: `@odata.etag` (W/"<versionnumber>"), lookups as `_<column>_value`, the primary id
always present, and with `Prefer: odata.include-annotations` the FormattedValue / lookuplogicalname /
associatednavigationproperty annotations (PAD/webapi/query/select-columns.md, PAD/webapi/compose-http-requests-
handle-errors.md). Without `$select` every column is returned, null ones included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators.dataverse import errors
from emulators.dataverse.limits import Cost
from emulators.dataverse.odata import Preferences
from emulators.dataverse.schema import SYSTEM_USER, Column, ColumnType, Table
from emulators.dataverse.security import CallContext

JSON_TYPE = "application/json; odata.metadata=minimal"
FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"


@dataclass
class ApiRequest:
    method: str
    path: str  # relative to the service root, percent-decoded, e.g. "accounts(accountnumber='A-1')"
    query: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    prefer: Preferences
    raw_query: str = ""
    url: str = ""  # full URL, for messages


@dataclass
class Call:
    """One operation being served: the request, who makes it, and what it costs."""

    req: ApiRequest
    ctx: CallContext
    cost: Cost


@dataclass
class ApiResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> ApiResponse:
    return ApiResponse(status, [("Content-Type", JSON_TYPE), *headers], dumps(payload))


def error_response(error: errors.DataverseError) -> ApiResponse:
    if error.html:
        body = f"<html><body><h2>{error.message}</h2></body></html>".encode()
        return ApiResponse(error.status, [("Content-Type", "text/html; charset=utf-8"), *error.headers.items()], body)
    return ApiResponse(error.status, [("Content-Type", JSON_TYPE), *error.headers.items()], dumps(error.body()))


def format_key_value(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def entity_url(root: str, table: Table, record_id: str) -> str:
    return f"{root}/{table.entity_set}({record_id})"


def key_url(root: str, table: Table, values: Mapping[str, Any]) -> str:
    """The key form of an entity URL, as upsert by alternate key returns it in OData-EntityId."""
    parts = ",".join(f"{name}={format_key_value(value)}" for name, value in values.items())
    return f"{root}/{table.entity_set}({parts})"


def etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def select_columns(table: Table, select: list[str] | None) -> list[Column]:
    if select is None:
        return list(table.columns.values())
    columns = []
    for name in select:
        column = table.by_odata_name.get(name)
        if column is None:
            raise errors.property_not_found(name, table.logical_name)
        columns.append(column)
    return columns


def context_url(root: str, table: Table, select: list[str] | None, suffix: str = "") -> str:
    projection = "(" + ",".join(select) + ")" if select else ""
    return f"{root}/$metadata#{table.entity_set}{projection}{suffix}"


class RowRenderer:
    """Renders rows of one table for one request (selected columns and annotations decided once)."""

    def __init__(
        self, table: Table, columns: list[Column], prefer: Preferences, lookup_name: Callable[[str, str], Any]
    ) -> None:
        self.table = table
        self.columns = [c for c in columns if c.name != table.primary_id]
        self.formatted = prefer.wants_annotation(FORMATTED)
        self.lookup_annotations = prefer.wants_annotation(LOOKUP_LOGICAL_NAME)
        self.navigation_annotations = prefer.wants_annotation(ASSOCIATED_NAVIGATION)
        self._lookup_name = lookup_name  # (logical name, id) -> primary name, for lookup FormattedValue

    def render(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": etag(row)}
        for column in self.columns:
            value = row.get(column.name)
            name = column.odata_name
            if column.type is ColumnType.LOOKUP and value is not None:
                self._lookup(out, column, name, row)
            elif self.formatted and value is not None:
                formatted = _formatted(column, value)
                if formatted is not None:
                    out[f"{name}@{FORMATTED}"] = formatted
            out[name] = value
        out[self.table.primary_id] = row[self.table.primary_id]
        return out

    def _lookup(self, out: dict[str, Any], column: Column, name: str, row: Mapping[str, Any]) -> None:
        target = row.get(f"{column.name}@table") or SYSTEM_USER
        if self.formatted:
            label = self._lookup_name(target, row[column.name])
            if label is not None:
                out[f"{name}@{FORMATTED}"] = label
        if self.navigation_annotations:
            nav = next((t.navigation for t in column.targets if t.table == target), column.name)
            out[f"{name}@{ASSOCIATED_NAVIGATION}"] = nav
        if self.lookup_annotations:
            out[f"{name}@{LOOKUP_LOGICAL_NAME}"] = target


def _formatted(column: Column, value: Any) -> str | None:
    if column.type is ColumnType.CHOICE:
        return column.options.get(value, str(value))
    if column.type is ColumnType.BOOL:
        return "Yes" if value else "No"
    if column.type is ColumnType.MONEY:
        return f"${value:,.2f}"
    if column.type in (ColumnType.INT, ColumnType.BIGINT, ColumnType.DECIMAL, ColumnType.DOUBLE):
        return f"{value:,}"
    if column.type is ColumnType.DATETIME:
        return str(value)
    return None
