"""The Web API operations of one environment: routing, create/retrieve/update/upsert/delete, queries.

Behaviour follows (PAD = MicrosoftDocs/powerapps-docs powerapps-docs/developer/data-platform/):
- create: POST to the entity set -> 204 + OData-EntityId; `Prefer: return=representation` -> 201 with the row
  (PAD/webapi/create-entity-web-api.md);
- upsert: PATCH to an id or alternate-key URL -> 204 for create and update, OData-EntityId in the URL's form;
  with return=representation 201 (created) / 200 (updated) + ETag. Key columns in the body are removed when the
  row exists; when it does not, body key values win over the URL's (PAD/use-upsert-insert-update-record.md);
- `If-Match: *` prevents create (404), `If-None-Match: *` prevents update (412), `If-Match: W/"v"` must match the
  row version (412) (PAD/webapi/perform-conditional-operations-using-web-api.md);
- lookups are set with `<navigation>@odata.bind` to an id or alternate-key URL (PAD/use-alternate-key-reference-
  record.md); setting one needs Append on the row's table and AppendTo on the target's;
- queries: `$select`, `$filter`, `$orderby`, `$top`, `$count`, paging with `Prefer: odata.maxpagesize` and
  `@odata.nextLink` (PAD/webapi/query/*.md); `$skip` is rejected as Dataverse does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from emulators.dataverse import errors
from emulators.dataverse.odata import (
    Getter,
    KeySpec,
    Segment,
    parse_aliases,
    parse_filter,
    parse_orderby,
    parse_segment,
    parse_select,
    split_path,
)
from emulators.dataverse.render import (
    ApiRequest,
    ApiResponse,
    Call,
    RowRenderer,
    context_url,
    entity_url,
    etag,
    json_response,
    key_url,
    select_columns,
)
from emulators.dataverse.schema import AlternateKey, Column, ColumnType, Table
from emulators.dataverse.security import Access, CallContext, Principal
from emulators.dataverse.store import Row, Transaction, rows_sorted

if TYPE_CHECKING:
    from emulators.dataverse.org import Org

_ROOT_PREFIX = re.compile(r"^(?:https?://[^/]+)?/?api/data/v9\.\d/", re.IGNORECASE)
_PAGING_COOKIE = re.compile(r'pagenumber="(\d+)"\s+pagingcookie="([^"]*)"')
_BULK_ACTION_PREFIX = "Microsoft.Dynamics.CRM."


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Target:
    """Where a key URL points: the existing row (if any) and the values to create it with."""

    existing_id: str | None
    new_id: str | None = None
    key: AlternateKey | None = None
    key_values: dict[str, Any] | None = None


class WebApi:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.schema = org.schema
        self.store = org.store

    @property
    def root(self) -> str:
        return self.org.service_root

    # --- routing -------------------------------------------------------------------------------------------

    def handle(self, call: Call, txn: Transaction | None = None) -> ApiResponse:
        """Serve one operation. Writes go into `txn` (a change set's) or into a transaction of their own."""
        from emulators.dataverse import metadata  # noqa: PLC0415 - metadata uses WebApi

        req = call.req
        segments = split_path(req.path)
        if not segments:
            return metadata.service_document(self, call)
        first = segments[0]
        if first.name in metadata.ROUTES:
            return metadata.ROUTES[first.name](self, call, segments)
        table = self.schema.by_entity_set.get(first.name)
        if table is None:
            raise errors.resource_not_found(first.name)
        if len(segments) > 2:
            raise errors.resource_not_found(segments[2].name)
        if len(segments) == 2:
            return self._sub_resource(call, table, segments, txn)
        key = first.key
        if key is None:
            if first.has_parens:
                raise errors.invalid_key(table.logical_name)
            if req.method == "GET":
                return self._list_or_track(call, table)
            if req.method == "POST":
                return self._write(txn, lambda t: self.create(call, table, t))
            raise errors.method_not_allowed(req.method)
        if req.method == "GET":
            return self.retrieve(call, table, key)
        if req.method == "PATCH":
            return self._write(txn, lambda t: self.patch(call, table, key, t))
        if req.method == "DELETE":
            return self._write(txn, lambda t: self.delete(call, table, key, t))
        raise errors.method_not_allowed(req.method)

    def _list_or_track(self, call: Call, table: Table) -> ApiResponse:
        from emulators.dataverse import changes  # noqa: PLC0415 - changes uses WebApi

        return changes.list_or_track(self, call, table)

    def _sub_resource(self, call: Call, table: Table, segments: list[Segment], txn: Transaction | None) -> ApiResponse:
        from emulators.dataverse import bulk, changes  # noqa: PLC0415 - they use WebApi

        req, (first, second) = call.req, segments
        if first.key is None:
            if second.name == "$count" and req.method == "GET":
                return changes.count(self, call, table)
            if second.name.startswith(_BULK_ACTION_PREFIX):
                if req.method != "POST":
                    raise errors.no_route(req.url)
                action = second.name[len(_BULK_ACTION_PREFIX) :]
                return self._write(txn, lambda t: bulk.execute(self, call, table, action, t))
            raise errors.resource_not_found(second.name)
        if req.method != "GET":
            raise errors.method_not_allowed(req.method)
        if second.name in table.collections:
            return self.related(call, table, first.key, second.name)
        column = table.by_odata_name.get(second.name)
        if column is not None:
            return self.property_value(call, table, first.key, column.odata_name)
        raise errors.resource_not_found(second.name)

    def _write(self, txn: Transaction | None, operation: Callable[[Transaction], ApiResponse]) -> ApiResponse:
        if txn is not None:
            return operation(txn)
        with self.store.transaction() as own:
            return operation(own)

    # --- keys and references -------------------------------------------------------------------------------

    def resolve_key(self, table: Table, key: KeySpec) -> Target:
        data = self.store.data(table.logical_name)
        if key.record_id is not None:
            return Target(key.record_id if key.record_id in data.rows else None, new_id=key.record_id)
        values = key.values or {}
        if len(values) == 1 and table.primary_id in values:
            record_id = values[table.primary_id]
            if not isinstance(record_id, str):
                raise errors.invalid_key(table.logical_name)
            return Target(record_id if record_id in data.rows else None, new_id=record_id)
        columns = {}
        by_odata_name = table.by_odata_name
        for name, value in values.items():
            column = by_odata_name.get(name)
            if column is None:
                raise errors.invalid_key(table.logical_name)
            columns[column.name] = self._key_value(table, column.type, value)
        alternate = table.keys_by_columns.get(frozenset(columns))
        if alternate is None:
            raise errors.invalid_key(table.logical_name)
        return Target(data.find_by_key(alternate, columns), key=alternate, key_values=columns)

    @staticmethod
    def _key_value(table: Table, column_type: ColumnType, value: Any) -> Any:
        if column_type in (ColumnType.STRING, ColumnType.LOOKUP):
            ok = isinstance(value, str)
        elif column_type is ColumnType.DATETIME:
            ok = isinstance(value, str) and value.endswith("Z")
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise errors.invalid_key(table.logical_name)
        return value

    def parse_reference(self, reference: str) -> tuple[Table, KeySpec]:
        """`accounts(<id>)`, `/accounts(accountnumber='A')` or an absolute URL -> (table, key)."""
        relative = reference.strip()
        if relative.startswith(("/", "http")):
            relative = _ROOT_PREFIX.sub("", relative).lstrip("/")
        segment = parse_segment(relative)
        table = self.schema.by_entity_set.get(segment.name)
        if table is None:
            raise errors.resource_not_found(segment.name)
        if segment.key is None:
            raise errors.invalid_key(table.logical_name)
        return table, segment.key

    def resolve_bind(self, reference: Any, owner: Table, navigation: str, expected: str) -> str:
        """The id of the row an `@odata.bind` names; raises the documented not-found errors."""
        if not isinstance(reference, str):
            raise errors.cannot_convert_primitive(owner.entity_set, "Edm.String")
        table, key = self.parse_reference(reference)
        if table.logical_name != expected:
            # Emulator wording: the docs do not show Dataverse's message for a bind to the wrong entity set.
            raise errors.payload_error(
                owner.entity_set,
                f"Microsoft.OData.ODataException: The navigation property '{navigation}' expects an entity of type "
                f"'Microsoft.Dynamics.CRM.{expected}', but '{reference}' refers to '{table.type_name}'.",
            )
        return self._existing(table, key, missing_id=errors.bind_target_missing)

    # --- writing rows --------------------------------------------------------------------------------------

    def apply_body(self, table: Table, body: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Validated column values from a request body (binds resolved to ids)."""
        changes: dict[str, Any] = {}
        coercers = table.coercers
        binds = False
        for name, value in body.items():
            if "@" in name:
                if name.endswith("@odata.bind"):
                    self._bind(table, name[:-11], value, ctx, changes)
                    binds = True
                continue  # other instance/property annotations (@odata.type, @odata.etag, ...) carry no data
            coerce = coercers.get(name)
            if coerce is None:
                column = table.columns.get(name)
                # Read-only system columns (createdon, versionnumber...) are ignored on write, as for
                # IsValidForCreate/IsValidForUpdate false attributes (inference: not documented for the Web API).
                if column is not None and column.read_only and column.type is not ColumnType.LOOKUP:
                    continue
                raise errors.invalid_property(table.entity_set, name, table.logical_name)
            changes[name] = coerce(value)
        if binds:
            ctx.require(table, Access.APPEND)
        return changes

    def _bind(self, table: Table, navigation: str, value: Any, ctx: CallContext, changes: dict[str, Any]) -> None:
        entry = table.navigations.get(navigation)
        if entry is None or entry[0].read_only:
            raise errors.undeclared_navigation(table.entity_set, navigation)
        column, target = entry
        if value is None:
            changes[column.name] = None
            changes[f"{column.name}@table"] = None
            return
        changes[column.name] = self.resolve_bind(value, table, navigation, target.table)
        changes[f"{column.name}@table"] = target.table
        ctx.require(self.schema.tables[target.table], Access.APPEND_TO)

    def _stamp(self, ctx: CallContext, now: str, creating: bool) -> dict[str, Any]:
        effective = ctx.effective.systemuser_id
        on_behalf = ctx.caller.systemuser_id if ctx.impersonating else None
        stamp: dict[str, Any] = {
            "versionnumber": self.store.next_version(),
            "modifiedon": now,
            "modifiedby": effective,
            "modifiedonbehalfby": on_behalf,
        }
        if creating:
            stamp.update(createdon=now, createdby=effective, createdonbehalfby=on_behalf, ownerid=effective)
        return stamp

    @staticmethod
    def _compose(table: Table, row: Mapping[str, Any], changes: dict[str, Any]) -> None:
        for column in table.composed:
            if any(part in changes for part in column.composed_of):
                parts = [changes.get(p, row.get(p)) for p in column.composed_of]
                changes[column.name] = " ".join(str(p) for p in parts if p) or None

    def create_row(
        self,
        table: Table,
        body: Mapping[str, Any],
        ctx: CallContext,
        txn: Transaction,
        now: str,
        *,
        record_id: str | None = None,
        key_values: Mapping[str, Any] | None = None,
    ) -> Row:
        ctx.require(table, Access.CREATE)
        changes = self.apply_body(table, body, ctx)
        if key_values:
            for name, value in key_values.items():
                changes.setdefault(name, value)  # body key values win over the URL's (use-upsert doc)
        primary = table.primary_id
        changes[primary] = record_id or changes.get(primary) or self.store.new_id()  # a URL id wins over the body's
        for name in table.required:
            if changes.get(name) is None:
                raise errors.required_missing(name, table.logical_name)
        self._compose(table, {}, changes)
        row = {**changes, **self._stamp(ctx, now, creating=True)}
        txn.insert(self.store.data(table.logical_name), row)
        return row

    def update_row(
        self,
        table: Table,
        record_id: str,
        body: Mapping[str, Any],
        ctx: CallContext,
        txn: Transaction,
        *,
        now: str,
        drop: Sequence[str] = (),
    ) -> Row:
        ctx.require(table, Access.WRITE)
        changes = self.apply_body(table, body, ctx)
        changes.pop(table.primary_id, None)
        for name in drop:
            changes.pop(name, None)  # an upsert cannot change the key it addressed the row by
        for name in table.required:
            if name in changes and changes[name] is None:
                raise errors.required_missing(name, table.logical_name)
        data = self.store.data(table.logical_name)
        self._compose(table, data.rows[record_id], changes)
        changes.update(self._stamp(ctx, now, creating=False))
        return txn.update(data, record_id, changes)

    def json_body(self, req: ApiRequest, table: Table) -> dict[str, Any]:
        try:
            body = json.loads(req.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid_json(table.entity_set) from None
        if not isinstance(body, dict):
            raise errors.invalid_json(table.entity_set)
        return body

    # --- operations ----------------------------------------------------------------------------------------

    def create(self, call: Call, table: Table, txn: Transaction) -> ApiResponse:
        req, cost = call.req, call.cost
        cost.kind = cost.kind or "Create"
        body = self.json_body(req, table)
        row = self.create_row(table, body, call.ctx, txn, utc_now())
        cost.count_write()
        location = entity_url(self.root, table, row[table.primary_id])
        return self._written(req, table, row, created=True, entity_id=location)

    def patch(self, call: Call, table: Table, key: KeySpec, txn: Transaction) -> ApiResponse:
        req, ctx, cost = call.req, call.ctx, call.cost
        if_match = req.headers.get("if-match")
        if_none_match = req.headers.get("if-none-match")
        cost.kind = cost.kind or ("Update" if if_match else "Upsert")
        target = self.resolve_key(table, key)
        body = self.json_body(req, table)
        data = self.store.data(table.logical_name)
        if target.existing_id is not None and if_none_match == "*":
            raise errors.already_exists_create_only()
        if if_match:
            if target.existing_id is None:
                if target.key is not None:
                    raise errors.key_record_not_found(table.logical_name)
                raise errors.not_found_by_id(table.logical_name, str(target.new_id), code="")
            if if_match != "*" and if_match != etag(data.rows[target.existing_id]):
                raise errors.etag_mismatch()
        now = utc_now()
        if target.existing_id is not None:
            drop = target.key.columns if target.key else ()
            row = self.update_row(table, target.existing_id, body, ctx, txn, now=now, drop=drop)
            created = False
        else:
            row = self.create_row(table, body, ctx, txn, now, record_id=target.new_id, key_values=target.key_values)
            created = True
        cost.count_write()
        if target.key is not None and target.key_values is not None:
            location = key_url(self.root, table, {c: row.get(c) for c in target.key.columns})
        else:
            location = entity_url(self.root, table, row[table.primary_id])
        return self._written(req, table, row, created=created, entity_id=location)

    def _written(self, req: ApiRequest, table: Table, row: Row, *, created: bool, entity_id: str) -> ApiResponse:
        headers = [("OData-EntityId", entity_id)]
        if not req.prefer.return_representation:
            return ApiResponse(204, headers)
        headers += [("ETag", etag(row)), ("Preference-Applied", "return=representation")]
        return json_response(201 if created else 200, self._entity(req, table, row), headers)

    def _entity(self, req: ApiRequest, table: Table, row: Row) -> dict[str, Any]:
        """One row as an entity payload: `$select`ed columns and the `/$entity` context."""
        select = parse_select(req.query.get("$select"))
        return {
            "@odata.context": context_url(self.root, table, select, "/$entity"),
            **self.renderer(table, select_columns(table, select), req).render(row),
        }

    def delete(self, call: Call, table: Table, key: KeySpec, txn: Transaction) -> ApiResponse:
        req, cost = call.req, call.cost
        cost.kind = cost.kind or "Delete"
        call.ctx.require(table, Access.DELETE)
        record_id = self._existing(table, key)
        data = self.store.data(table.logical_name)
        if_match = req.headers.get("if-match")
        if if_match and if_match != "*" and if_match != etag(data.rows[record_id]):
            raise errors.etag_mismatch()
        txn.delete(data, record_id, self.store.next_version())
        cost.count_write()
        return ApiResponse(204)

    def _existing(
        self,
        table: Table,
        key: KeySpec,
        missing_id: Callable[[str, str], errors.DataverseError] = errors.not_found_by_id,
    ) -> str:
        """The id of the row `key` names; a missing row raises 0x80060891 (key) or `missing_id` (id)."""
        target = self.resolve_key(table, key)
        if target.existing_id is None:
            if target.key is not None:
                raise errors.key_record_not_found(table.logical_name)
            raise missing_id(table.logical_name, str(target.new_id))
        return target.existing_id

    def retrieve(self, call: Call, table: Table, key: KeySpec) -> ApiResponse:
        req, cost = call.req, call.cost
        cost.kind = cost.kind or "Retrieve"
        call.ctx.require(table, Access.READ)
        reject_unsupported(req)
        row = self.store.data(table.logical_name).rows[self._existing(table, key)]
        cost.count_read(rows_returned=1)
        if req.headers.get("if-none-match") == etag(row):
            return ApiResponse(304)  # conditional retrieval (perform-conditional-operations doc)
        return json_response(200, self._entity(req, table, row))

    def property_value(self, call: Call, table: Table, key: KeySpec, name: str) -> ApiResponse:
        cost = call.cost
        cost.kind = cost.kind or "Retrieve"
        call.ctx.require(table, Access.READ)
        record_id = self._existing(table, key)
        column = table.by_odata_name[name]
        cost.count_read()
        value = self.store.data(table.logical_name).rows[record_id].get(column.name)
        context = f"{self.root}/$metadata#{table.entity_set}({record_id})/{name}"
        return json_response(200, {"@odata.context": context, "value": value})

    def renderer(self, table: Table, columns: list[Column], req: ApiRequest) -> RowRenderer:
        return RowRenderer(table, columns, req.prefer, self.primary_name_of)

    def primary_name_of(self, logical_name: str, record_id: str) -> Any:
        table = self.schema.tables.get(logical_name)
        if table is None:
            return None
        row = self.store.data(logical_name).rows.get(record_id)
        return row.get(table.primary_name) if row else None

    # --- queries -------------------------------------------------------------------------------------------

    def query_rows(self, req: ApiRequest, table: Table, rows: list[Row]) -> list[Row]:
        """Apply $filter and $orderby (default order: primary key)."""
        text = req.query.get("$filter")
        if text:
            predicate = parse_filter(text, lambda name: self._getter(table, name), parse_aliases(req.query))
            rows = [r for r in rows if predicate(r)]
        result = rows_sorted(rows, table.primary_id)
        order = req.query.get("$orderby")
        if order:
            for name, descending in reversed(parse_orderby(order)):  # stable sorts, last key first
                result.sort(key=_sort_key(self._column(table, name).name), reverse=descending)
        return result

    def _column(self, table: Table, name: str) -> Column:
        column = table.by_odata_name.get(name)
        if column is None:
            raise errors.property_not_found(name, table.logical_name)
        return column

    def _getter(self, table: Table, name: str) -> Getter:
        column_name = self._column(table, name).name
        return lambda row: row.get(column_name)

    def list_rows(self, call: Call, table: Table, rows: list[Row]) -> ApiResponse:
        """A page of `rows` (already narrowed to the resource addressed) with paging as Dataverse does it."""
        req, cost = call.req, call.cost
        cost.kind = cost.kind or "RetrieveMultiple"
        call.ctx.require(table, Access.READ)
        reject_unsupported(req)
        select = parse_select(req.query.get("$select"))
        columns = select_columns(table, select)
        rows = self.query_rows(req, table, rows)
        prefer = req.prefer
        top = req.query.get("$top")
        page_size = self.page_size(req)
        if top is not None and prefer.max_page_size is None:  # $top is ignored when maxpagesize is given
            if not top.isdecimal():
                raise errors.query_syntax(f"Invalid value '{top}' for $top query option found.")
            rows = rows[: int(top)]
        page = _page_number(req.query.get("$skiptoken"))
        skip = (page - 1) * page_size
        chunk = rows[skip : skip + page_size]
        renderer = self.renderer(table, columns, req)
        payload: dict[str, Any] = {"@odata.context": context_url(self.root, table, select)}
        if req.query.get("$count") == "true":
            payload["@odata.count"] = len(rows)
        payload["value"] = [renderer.render(r) for r in chunk]
        headers = []
        if prefer.max_page_size:
            headers.append(("Preference-Applied", f"odata.maxpagesize={prefer.max_page_size}"))
        if skip + page_size < len(rows):
            payload["@odata.nextLink"] = self.next_link(req, table, page + 1, chunk, tracking=False)
        cost.count_read(rows_returned=len(chunk))
        return json_response(200, payload, headers)

    def page_size(self, req: ApiRequest) -> int:
        """`Prefer: odata.maxpagesize`, capped at the environment's page size, which is also the default
        (PAD/webapi/query/page-results.md)."""
        limit = self.org.config.max_page_size
        return min(req.prefer.max_page_size or limit, limit)

    def next_link(
        self, req: ApiRequest, table: Table, page: int, chunk: list[Row], *, tracking: bool, extra: str = ""
    ) -> str:
        """An @odata.nextLink with the opaque paging cookie Dataverse uses (PAD/webapi/query/page-results.md)."""
        first = chunk[0][table.primary_id] if chunk else ""
        last = chunk[-1][table.primary_id] if chunk else ""
        inner = (
            f'<cookie page="{page - 1}"{extra}><{table.primary_id} last="{{{last}}}" first="{{{first}}}" /></cookie>'
        )
        cookie = (
            f'<cookie pagenumber="{page}" pagingcookie="{quote(quote(inner, safe=""), safe="")}" '
            f'istracking="{"True" if tracking else "False"}" />'
        )
        kept = query_without(req.raw_query, "skiptoken")
        kept.append("$skiptoken=" + quote(cookie, safe="="))
        path = req.path.split("?")[0]
        return f"{self.root}/{path}?{'&'.join(kept)}"

    def related(self, call: Call, table: Table, key: KeySpec, collection: str) -> ApiResponse:
        call.ctx.require(table, Access.READ)
        parent_id = self._existing(table, key)
        child_name, lookup = table.collections[collection]
        child = self.schema.tables[child_name]
        rows = [
            r
            for r in self.store.data(child_name).rows.values()
            if r.get(lookup.name) == parent_id and r.get(f"{lookup.name}@table") == table.logical_name
        ]
        return self.list_rows(call, child, rows)

    def seed(self, table: Table, records: Sequence[Mapping[str, Any]], principal: Principal) -> list[str]:
        ctx = CallContext(principal, principal)
        now = utc_now()
        with self.store.transaction() as txn:
            return [self.create_row(table, record, ctx, txn, now)[table.primary_id] for record in records]


def _sort_key(column: str) -> Callable[[Row], tuple[bool, Any]]:
    return lambda row: (row.get(column) is not None, row.get(column))


def reject_unsupported(req: ApiRequest) -> None:
    if "$skip" in req.query:
        # Observed Dataverse answer (reference §6): "Skip Clause is not supported in CRM".
        raise errors.DataverseError(400, errors.ODATA_URI_ERROR, "Skip Clause is not supported in CRM")
    for option in ("$expand", "$apply", "$search"):
        if option in req.query:
            raise errors.unsupported_query_option(option)


def query_without(raw_query: str, *options: str) -> list[str]:
    """The request's query parameters, as sent, except the system query `options` (`$` sent plain or as %24)."""
    dropped = tuple(f"{dollar}{option}=" for option in options for dollar in ("$", "%24"))
    return [p for p in raw_query.split("&") if p and not p.startswith(dropped)]


def _page_number(skiptoken: str | None) -> int:
    return int(paging_cookie_values(skiptoken)["pagenumber"]) if skiptoken else 1


def paging_cookie_values(skiptoken: str) -> dict[str, str]:
    """Attributes of the inner paging cookie (used by change tracking to carry its snapshot)."""
    match = _PAGING_COOKIE.search(skiptoken)
    if not match:
        raise errors.query_syntax("The $skiptoken is not a valid paging cookie.")
    inner = unquote(unquote(match.group(2)))
    values = dict(re.findall(r'(\w+)="([^"]*)"', inner.split("><")[0]))
    values["pagenumber"] = match.group(1)
    return values
