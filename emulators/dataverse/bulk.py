"""Bulk actions: CreateMultiple, UpdateMultiple, UpsertMultiple (and DeleteMultiple's answer on standard tables).

PAD/bulk-operations.md and learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/upsertmultiple:
- `POST <set>/Microsoft.Dynamics.CRM.<Action>` with `{"Targets": [...]}`; every target needs `@odata.type`
  (Targets is a collection of the abstract crmbaseentity, so OData rejects a target without it).
- CreateMultiple -> 200 `{"@odata.context": ".../$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
  "Ids": [...]}`; UpdateMultiple and UpsertMultiple -> 204 (UpsertMultipleResponse is not returned).
- UpsertMultiple identifies rows by `"@odata.id": "<set>(<key>=...)"`. Gotcha (PowerPlatform-DataverseClient-
  Python PR #127): a key column both in the body and in `@odata.id` fails the create path with 0x80040216
  "An unexpected error occurred." while the update path tolerates it.
- Standard tables: one transaction, any error rolls back the whole request; the error is the failing target's.
  With `Prefer: odata.include-annotations` the error also carries
  `@Microsoft.PowerApps.CDS.ErrorDetails.RequestIndex` (the index Dataverse reports per record for elastic tables;
  for standard tables it is an emulator addition, so clients must not rely on it against real Dataverse).
- A table without the messages answers SdkEntityDoesNotSupportMessage; DeleteMultiple on a standard table answers
  "DeleteMultiple has not yet been implemented."
- Service protection counts the whole request once; its execution time grows per target (api-limits.md FAQ).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulators.dataverse import errors
from emulators.dataverse.render import ApiRequest, ApiResponse, Call, json_response
from emulators.dataverse.schema import Table
from emulators.dataverse.security import CallContext
from emulators.dataverse.store import Transaction
from emulators.dataverse.webapi import Target, utc_now

if TYPE_CHECKING:
    from emulators.dataverse.webapi import WebApi

ACTIONS = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple", "DeleteMultiple")
REQUEST_INDEX = "@Microsoft.PowerApps.CDS.ErrorDetails.RequestIndex"


def execute(api: WebApi, call: Call, table: Table, action: str, txn: Transaction) -> ApiResponse:
    req, ctx, cost = call.req, call.ctx, call.cost
    if action not in ACTIONS:
        raise errors.resource_not_found(f"Microsoft.Dynamics.CRM.{action}")
    cost.kind = action
    if action == "DeleteMultiple":
        raise errors.delete_multiple_not_implemented()  # every emulated table is a standard table
    if not table.bulk_actions:
        raise errors.message_not_supported(action, table.logical_name)
    targets = _targets(api, req, table)
    cost.bulk_records = len(targets)
    run = _BulkRun(api, table, ctx, txn, utc_now())
    operation = {"CreateMultiple": run.create, "UpdateMultiple": run.update, "UpsertMultiple": run.upsert}[action]
    ids: list[str] = []
    for index, target in enumerate(targets):
        try:
            ids.append(operation(target))
        except errors.DataverseError as exc:
            if req.prefer.wants_annotation(REQUEST_INDEX[1:]):
                exc.annotations[REQUEST_INDEX] = index
            raise
    cost.operations += len(targets)
    cost.records_written += len(targets)
    if action == "CreateMultiple":
        context = f"{api.root}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
        return json_response(200, {"@odata.context": context, "Ids": ids})
    return ApiResponse(204)


def _targets(api: WebApi, req: ApiRequest, table: Table) -> list[dict[str, Any]]:
    body = api.json_body(req, table)
    targets = body.get("Targets")
    if not isinstance(targets, list):
        # Emulator wording: the action's required parameter is missing.
        raise errors.payload_error(
            table.entity_set,
            "Microsoft.OData.ODataException: The parameter 'Targets' in the request payload is not a valid "
            "parameter for the operation.",
        )
    expected = {table.type_name, f"#{table.type_name}"}
    for target in targets:
        if not isinstance(target, dict):
            raise errors.cannot_convert_primitive(table.entity_set, "Microsoft.Dynamics.CRM.crmbaseentity")
        type_name = target.get("@odata.type")
        if type_name is None:
            raise errors.payload_error(
                table.entity_set,
                "Microsoft.OData.ODataException: A type name was not provided for an instance of an abstract type "
                "'Microsoft.Dynamics.CRM.crmbaseentity'.",
            )
        if type_name not in expected:
            raise errors.message_not_supported("Create", str(type_name).removeprefix("#").rsplit(".", 1)[-1])
    return targets


@dataclass
class _BulkRun:
    api: WebApi
    table: Table
    ctx: CallContext
    txn: Transaction
    now: str

    def create(self, target: Mapping[str, Any]) -> str:
        row = self.api.create_row(self.table, target, self.ctx, self.txn, self.now)
        return str(row[self.table.primary_id])

    def update(self, target: Mapping[str, Any]) -> str:
        record_id = self._identify(target)
        if record_id is None:
            # The SDK's message for an Update without an id.
            raise errors.DataverseError(400, errors.INVALID_ARGUMENT, "Entity Id must be specified for Update")
        if record_id not in self.api.store.data(self.table.logical_name).rows:
            raise errors.not_found_by_id(self.table.logical_name, record_id)
        self.api.update_row(self.table, record_id, target, self.ctx, self.txn, now=self.now)
        return record_id

    def _reference(self, reference: Any) -> Target:
        ref_table, key = self.api.parse_reference(str(reference))
        if ref_table is not self.table:
            raise errors.invalid_key(self.table.logical_name)
        return self.api.resolve_key(self.table, key)

    def _identify(self, target: Mapping[str, Any]) -> str | None:
        reference = target.get("@odata.id")
        if reference is not None:
            resolved = self._reference(reference)
            return resolved.existing_id or resolved.new_id
        record_id = target.get(self.table.primary_id)
        return record_id.lower() if isinstance(record_id, str) else None

    def upsert(self, target: Mapping[str, Any]) -> str:
        api, table, primary = self.api, self.table, self.table.primary_id
        reference = target.get("@odata.id")
        if reference is None:
            record_id = target.get(primary)
            if isinstance(record_id, str) and record_id.lower() in api.store.data(table.logical_name).rows:
                return str(api.update_row(table, record_id.lower(), target, self.ctx, self.txn, now=self.now)[primary])
            return self.create(target)
        resolved = self._reference(reference)
        key_columns = resolved.key.columns if resolved.key else ()
        if resolved.existing_id is not None:
            row = api.update_row(
                table, resolved.existing_id, target, self.ctx, self.txn, now=self.now, drop=key_columns
            )
            return str(row[primary])
        if any(column in target for column in key_columns):
            raise errors.unexpected()
        row = api.create_row(
            table, target, self.ctx, self.txn, self.now, record_id=resolved.new_id, key_values=resolved.key_values
        )
        return str(row[primary])
