"""Change tracking over the Web API (PAD/use-change-tracking-synchronize-data-external-systems.md).

- `GET <set>?$select=...` with `Prefer: odata.track-changes` on a table with change tracking enabled returns
  every row plus `@odata.deltaLink` (`$deltatoken=<version>!<MM/dd/yyyy HH:mm:ss>`, URL-encoded) and
  `Preference-Applied: odata.track-changes`.
- Following the delta link returns rows created or changed since (by version), then deletions as
  `{"@odata.context": ".../$metadata#<set>/$deletedEntity", "id": ..., "reason": "deleted"}`, with a new delta
  link; a row created and deleted in between still yields a deletion. `<set>/$count?$deltatoken=` counts changes.
- `$filter`, `$orderby`, `$expand` and `$top` are rejected with the documented message.
- Pages: with `Prefer: odata.maxpagesize` an `@odata.nextLink` is returned and the delta link only on the last
  page (as observed by Airbyte's connector).
- A token older than the retention (ExpireChangeTrackingInDays) or older than an admin "expire" fails with
  ExpiredVersionStamp.
Not modelled: the order of changes within a version, and `Prefer: odata.track-changes` on a table without change
tracking is ignored (the docs do not say what Dataverse answers).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from emulators.dataverse import errors
from emulators.dataverse.odata import parse_select
from emulators.dataverse.render import ApiRequest, ApiResponse, Call, context_url, json_response, select_columns
from emulators.dataverse.schema import Table
from emulators.dataverse.security import Access
from emulators.dataverse.store import Row
from emulators.dataverse.webapi import paging_cookie_values, query_without

if TYPE_CHECKING:
    from emulators.dataverse.webapi import WebApi

REJECTED_OPTIONS = ("$filter", "$orderby", "$expand", "$top")
_TOKEN_TIME = "%m/%d/%Y %H:%M:%S"


def list_or_track(api: WebApi, call: Call, table: Table) -> ApiResponse:
    req = call.req
    tracking = "$deltatoken" in req.query or (req.prefer.track_changes and table.change_tracking)
    if not tracking:
        return api.list_rows(call, table, list(api.store.data(table.logical_name).rows.values()))
    return track(api, call, table)


def make_token(version: int, when: float | None = None) -> str:
    moment = datetime.fromtimestamp(when if when is not None else time.time(), UTC)
    return f"{version}!{moment.strftime(_TOKEN_TIME)}"


def parse_token(api: WebApi, token: str) -> int:
    version_text, _, stamp = token.partition("!")
    try:
        version = int(version_text)
        issued = datetime.strptime(stamp, _TOKEN_TIME).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise errors.invalid_delta_token(token) from None
    retention = api.org.config.change_tracking_retention_seconds
    if version < api.org.change_token_floor or issued < time.time() - retention:
        raise errors.expired_version_stamp()
    return version


def _changes(api: WebApi, table: Table, since: int | None, until: int) -> list[tuple[str, Any]]:
    """("row", row) for new/changed rows by version, then ("deleted", id) for deletions since the token."""
    data = api.store.data(table.logical_name)
    floor = since if since is not None else -1
    changed = sorted(
        (r for r in data.rows.values() if floor < r["versionnumber"] <= until), key=lambda r: r["versionnumber"]
    )
    entries: list[tuple[str, Any]] = [("row", r) for r in changed]
    if since is not None:
        entries += [("deleted", rid) for version, rid in data.deleted if since < version <= until]
    return entries


def track(api: WebApi, call: Call, table: Table) -> ApiResponse:
    req, cost = call.req, call.cost
    cost.kind = "RetrieveMultiple"
    for option in REJECTED_OPTIONS:
        if option in req.query:
            raise errors.change_tracking_option(option[1:])
    if not table.change_tracking:
        # Emulator wording: a delta token for a table without change tracking.
        raise errors.DataverseError(400, "0x0", f"Change tracking is not enabled for entity '{table.logical_name}'.")
    call.ctx.require(table, Access.READ)  # Dataverse needs organization-level Read; depth is not modelled
    token = req.query.get("$deltatoken")
    since = parse_token(api, token) if token else None
    skiptoken = req.query.get("$skiptoken")
    if skiptoken:
        cookie = paging_cookie_values(skiptoken)
        page, until = int(cookie["pagenumber"]), int(cookie.get("until", api.store.version))
    else:
        page, until = 1, api.store.version
    entries = _changes(api, table, since, until)
    select = parse_select(req.query.get("$select"))
    renderer = api.renderer(table, select_columns(table, select), req)
    page_size = api.page_size(req)
    start = (page - 1) * page_size
    chunk = entries[start : start + page_size]
    deleted_context = f"{api.root}/$metadata#{table.entity_set}/$deletedEntity"
    value = [
        renderer.render(item) if kind == "row" else {"@odata.context": deleted_context, "id": item, "reason": "deleted"}
        for kind, item in chunk
    ]
    suffix = "/$delta" if since is not None else ""
    payload: dict[str, Any] = {"@odata.context": context_url(api.root, table, select) + suffix}
    applied = ["odata.track-changes"]
    if req.prefer.max_page_size:
        applied.append(f"odata.maxpagesize={req.prefer.max_page_size}")
    if start + page_size < len(entries):
        rows: list[Row] = [item for kind, item in chunk if kind == "row"]
        payload["@odata.nextLink"] = api.next_link(req, table, page + 1, rows, tracking=True, extra=f' until="{until}"')
    else:
        payload["@odata.deltaLink"] = _delta_link(api, req, table, until)
    payload["value"] = value
    cost.count_read(rows_returned=len(chunk))
    return json_response(200, payload, [("Preference-Applied", ",".join(applied))])


def _delta_link(api: WebApi, req: ApiRequest, table: Table, until: int) -> str:
    kept = query_without(req.raw_query, "skiptoken", "deltatoken")
    kept.append("$deltatoken=" + quote(make_token(until), safe=""))
    return f"{api.root}/{table.entity_set}?{'&'.join(kept)}"


def count(api: WebApi, call: Call, table: Table) -> ApiResponse:
    """`<set>/$count` (plain number; with `$deltatoken`, the number of changes since the token)."""
    req, cost = call.req, call.cost
    cost.kind = "RetrieveMultiple"
    call.ctx.require(table, Access.READ)
    cost.count_read()
    token = req.query.get("$deltatoken")
    if token:
        number = len(_changes(api, table, parse_token(api, token), api.store.version))
    else:
        # Dataverse's $count returns at most 5000 (PAD/webapi/query/count-rows.md).
        number = min(len(api.store.data(table.logical_name).rows), 5000)
    return ApiResponse(200, [("Content-Type", "text/plain")], str(number).encode())
