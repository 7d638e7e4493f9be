"""Service document, `$metadata`, `WhoAmI`, `EntityDefinitions` and the bulk-support probe on sdkmessagefilters.

- WhoAmI: `GET WhoAmI` -> WhoAmIResponse {BusinessUnitId, UserId, OrganizationId}; POST is a 404 "No HTTP resource"
  (learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/whoami; troubleshooting article).
  The `x-ms-dop-hint` header is set on every response by the app (PAD/send-parallel-requests.md).
- EntityDefinitions: enough to discover entity set names, primary id/name, change tracking and keys
  (PAD/webapi/query-metadata-web-api.md, PAD/define-alternate-keys-entity.md): `$select`, `$filter`,
  `$expand=Keys` / `$expand=Attributes`, `EntityDefinitions(LogicalName='x')` and its `/Keys`, `/Attributes`.
- sdkmessagefilters: the documented probe for bulk-message support (PAD/bulk-operations.md#availability).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from emulators.dataverse import errors
from emulators.dataverse.odata import Segment, parse_aliases, parse_filter, parse_select
from emulators.dataverse.render import ApiResponse, Call, json_response
from emulators.dataverse.schema import ATTRIBUTE_TYPES, ColumnType, Table, _metadata_id

if TYPE_CHECKING:
    from emulators.dataverse.webapi import WebApi

BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


def service_document(api: WebApi, call: Call) -> ApiResponse:
    call.cost.kind = "ServiceDocument"
    sets = [{"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set} for t in api.schema.tables.values()]
    return json_response(200, {"@odata.context": f"{api.root}/$metadata", "value": sets})


def who_am_i(api: WebApi, call: Call, segments: list[Segment]) -> ApiResponse:
    req, ctx, cost = call.req, call.ctx, call.cost
    cost.kind = "WhoAmI"
    if req.method != "GET" or len(segments) != 1:
        raise errors.no_route(req.url)
    return json_response(
        200,
        {
            "@odata.context": f"{api.root}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": api.org.business_unit_id,
            "UserId": ctx.effective.systemuser_id,
            "OrganizationId": api.org.organization_id,
        },
    )


def _key_json(table: Table) -> list[dict[str, Any]]:
    return [
        {
            "MetadataId": key.metadata_id,
            "LogicalName": key.name.lower(),
            "SchemaName": key.name,
            "EntityLogicalName": table.logical_name,
            "KeyAttributes": list(key.columns),
            "EntityKeyIndexStatus": "Active",
        }
        for key in table.keys
    ]


def _attributes_json(table: Table) -> list[dict[str, Any]]:
    attributes = []
    for column in table.columns.values():
        item: dict[str, Any] = {
            "MetadataId": _metadata_id(table.logical_name, "attribute", column.name),
            "LogicalName": column.name,
            "SchemaName": column.name,
            "AttributeType": ATTRIBUTE_TYPES[column.type],
            "IsPrimaryId": column.name == table.primary_id,
            "IsPrimaryName": column.name == table.primary_name,
            "IsValidForCreate": not column.read_only,
            "IsValidForUpdate": not column.read_only and column.name != table.primary_id,
            "RequiredLevel": {"Value": "SystemRequired" if column.required else "None"},
        }
        if column.max_length is not None:
            item["MaxLength"] = column.max_length
        if column.type is ColumnType.LOOKUP:
            item["Targets"] = [t.table for t in column.targets]
        attributes.append(item)
    return attributes


def _entity_json(table: Table) -> dict[str, Any]:
    return {
        "MetadataId": table.metadata_id,
        "LogicalName": table.logical_name,
        "SchemaName": table.schema_name,
        "EntitySetName": table.entity_set,
        "LogicalCollectionName": table.entity_set,
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name,
        "ObjectTypeCode": table.object_type_code,
        "ChangeTrackingEnabled": table.change_tracking,
        "CanChangeTrackingBeEnabled": {"Value": True, "CanBeChanged": not table.change_tracking},
        "IsOptimisticConcurrencyEnabled": True,
        "IsCustomEntity": "_" in table.logical_name,
        "TableType": "Standard",
    }


_EXPAND_ITEM = re.compile(r"(\w+)(?:\((?:\$select=([\w,]+))?\))?")
_EXPANDABLE: dict[str, Callable[[Table], list[dict[str, Any]]]] = {"Keys": _key_json, "Attributes": _attributes_json}


def _project(item: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return item
    unknown = [s for s in select if s not in item]
    if unknown:
        raise errors.property_not_found(unknown[0], "EntityMetadata")
    return {"MetadataId": item["MetadataId"], **{s: item[s] for s in select}}


def _expand(table: Table, text: str | None) -> dict[str, Any]:
    expanded: dict[str, Any] = {}
    if not text:
        return expanded
    for match in _EXPAND_ITEM.finditer(text):
        name, inner_select = match.group(1), match.group(2)
        if name not in _EXPANDABLE:
            raise errors.property_not_found(name, "EntityMetadata")
        select = inner_select.split(",") if inner_select else None
        expanded[name] = [_project(i, select) for i in _EXPANDABLE[name](table)]
    return expanded


def _find_definition(api: WebApi, segment: Segment) -> Table:
    key = segment.key
    name = None
    if key is not None and key.values and "LogicalName" in key.values:
        name = key.values["LogicalName"]
        table = api.schema.tables.get(str(name))
    elif key is not None and key.record_id:
        name = key.record_id
        table = next((t for t in api.schema.tables.values() if t.metadata_id == key.record_id), None)
    else:
        raise errors.invalid_key("EntityMetadata")
    if table is None:
        # Emulator wording: Dataverse's text for an unknown table is not in the docs read.
        raise errors.DataverseError(404, errors.OBJECT_DOES_NOT_EXIST, f"Could not find an entity with name '{name}'.")
    return table


def entity_definitions(api: WebApi, call: Call, segments: list[Segment]) -> ApiResponse:
    req, cost = call.req, call.cost
    cost.kind = "EntityDefinitions"
    cost.reads += 1
    if req.method != "GET":
        raise errors.method_not_allowed(req.method)
    select = parse_select(req.query.get("$select"))
    root = f"{api.root}/$metadata#EntityDefinitions"
    if segments[0].key is None:
        items = [_entity_json(t) for t in api.schema.tables.values()]
        text = req.query.get("$filter")
        if text:
            known = set(items[0])
            predicate = parse_filter(text, lambda n: _dict_getter(n, known), parse_aliases(req.query))
            items = [i for i in items if predicate(i)]
        tables = {t.metadata_id: t for t in api.schema.tables.values()}
        value = [{**_project(i, select), **_expand(tables[i["MetadataId"]], req.query.get("$expand"))} for i in items]
        projection = f"({','.join(select)})" if select else ""
        return json_response(200, {"@odata.context": root + projection, "value": value})
    table = _find_definition(api, segments[0])
    if len(segments) == 2:
        name = segments[1].name
        if name not in _EXPANDABLE:
            raise errors.resource_not_found(name)
        items = [_project(i, select) for i in _EXPANDABLE[name](table)]
        return json_response(200, {"@odata.context": f"{root}('{table.logical_name}')/{name}", "value": items})
    payload = {"@odata.context": root + "/$entity", **_project(_entity_json(table), select)}
    payload.update(_expand(table, req.query.get("$expand")))
    return json_response(200, payload)


def _dict_getter(name: str, known: set[str]) -> Callable[[Mapping[str, Any]], Any]:
    path = name.split("/")
    if path[0] not in known:
        raise errors.property_not_found(name, "EntityMetadata")

    def get(item: Mapping[str, Any]) -> Any:
        value: Any = item
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    return get


def sdk_message_filters(api: WebApi, call: Call, segments: list[Segment]) -> ApiResponse:
    """Answers the documented probe `sdkmessageid/name eq @message and primaryobjecttypecode eq @table`."""
    req, cost = call.req, call.cost
    cost.kind = "RetrieveMultiple"
    cost.reads += 1
    rows = [
        {
            "sdkmessagefilterid": _metadata_id(t.logical_name, "sdkmessagefilter", message),
            "sdkmessageid/name": message,
            "primaryobjecttypecode": t.logical_name,
        }
        for t in api.schema.tables.values()
        for message in (
            "Create",
            "Update",
            "Delete",
            "Retrieve",
            "RetrieveMultiple",
            *(BULK_MESSAGES if t.bulk_actions else ()),
        )
    ]
    text = req.query.get("$filter")
    if text:
        known = {"sdkmessageid", "primaryobjecttypecode", "sdkmessagefilterid"}

        def getter(name: str) -> Callable[[Mapping[str, Any]], Any]:
            if name.split("/", maxsplit=1)[0] not in known:
                raise errors.property_not_found(name, "sdkmessagefilter")
            return lambda row: row.get(name)

        predicate = parse_filter(text, getter, parse_aliases(req.query))
        rows = [r for r in rows if predicate(r)]
    value = [{"@odata.etag": 'W/"1"', "sdkmessagefilterid": r["sdkmessagefilterid"]} for r in rows]
    context = f"{api.root}/$metadata#sdkmessagefilters(sdkmessagefilterid)"
    return json_response(200, {"@odata.context": context, "value": value})


def csdl(api: WebApi, call: Call, segments: list[Segment]) -> ApiResponse:
    """A small CSDL document: entity types (primary key, properties, navigation properties) and entity sets
    (with the change-tracking annotation). Alternate keys are not in it; EntityDefinitions/Keys lists them."""
    call.cost.kind = "Metadata"
    types = []
    for table in api.schema.tables.values():
        props = "".join(
            f'<Property Name="{escape(c.odata_name)}" Type="{c.edm_type}" />' for c in table.columns.values()
        )
        navs = "".join(
            f'<NavigationProperty Name="{n}" Type="mscrm.{t.table}" />'
            for n, (_, t) in table.navigations.items()
            if t.table in api.schema.tables
        )
        types.append(
            f'<EntityType Name="{table.logical_name}" BaseType="mscrm.crmbaseentity"><Key><PropertyRef '
            f'Name="{table.primary_id}" /></Key>{props}{navs}</EntityType>'
        )
    sets = "".join(
        f'<EntitySet Name="{t.entity_set}" EntityType="Microsoft.Dynamics.CRM.{t.logical_name}">'
        + (
            '<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record><PropertyValue Property="Supported" '
            'Bool="true" /></Record></Annotation>'
            if t.change_tracking
            else ""
        )
        + "</EntitySet>"
        for t in api.schema.tables.values()
    )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" '
        'xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices><Schema '
        'Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        f'<EntityType Name="crmbaseentity" Abstract="true" />{"".join(types)}'
        f'<EntityContainer Name="System">{sets}</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>'
    )
    return ApiResponse(200, [("Content-Type", "application/xml")], xml.encode())


def nested_batch(api: WebApi, call: Call, segments: list[Segment]) -> ApiResponse:
    del call, segments  # answers the same whatever the request
    # PAD/webapi/execute-batch-operations-using-web-api.md: batches cannot contain other batches.
    raise errors.batch_format("Batch requests cannot contain other batch requests.")


ROUTES: dict[str, Callable[[WebApi, Call, list[Segment]], ApiResponse]] = {
    "WhoAmI": who_am_i,
    "EntityDefinitions": entity_definitions,
    "sdkmessagefilters": sdk_message_filters,
    "$metadata": csdl,
    "$batch": nested_batch,
}
