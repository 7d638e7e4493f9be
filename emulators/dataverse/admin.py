"""Admin API of the Dataverse emulator: JSON over HTTP(S) on its own port, never under /api/data.

For tests and benchmarks running in another process: read rows and counts, seed or reset data, script faults,
change limits and latency, read counters, expire change-tracking tokens. It has no authentication: it listens on
127.0.0.1 only and exists in the local cloud alone. Routes are listed in docs/dataverse-emulator.md#admin-api.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from emulators.dataverse import errors
from emulators.dataverse.app import Receive, Scope, Send, read_body
from emulators.dataverse.faults import FaultRule
from emulators.dataverse.limits import LatencyModel, ServiceProtectionLimits

if TYPE_CHECKING:
    from emulators.dataverse.emulator import DataverseEmulator
    from emulators.dataverse.org import Org

Handler = Callable[["AdminRequest"], Any]


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AdminRequest:
    def __init__(self, method: str, params: dict[str, str], query: dict[str, str], body: bytes) -> None:
        self.method = method
        self.params = params
        self.query = query
        self.body = body

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise AdminError(400, "the request body is not JSON") from None


class AdminApp:
    def __init__(self, emulator: DataverseEmulator) -> None:
        self.emulator = emulator
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        route = self._route
        route("GET", r"/orgs", self.list_orgs)
        route("GET", r"/orgs/(?P<org>[^/]+)", self.get_org)
        route("GET", r"/orgs/(?P<org>[^/]+)/counts", lambda r: self._org(r).counts())
        route("GET", r"/orgs/(?P<org>[^/]+)/tables/(?P<table>[^/]+)/rows", self.list_rows)
        route("POST", r"/orgs/(?P<org>[^/]+)/tables/(?P<table>[^/]+)/rows", self.seed_rows)
        route("GET", r"/orgs/(?P<org>[^/]+)/tables/(?P<table>[^/]+)/rows/(?P<id>[^/]+)", self.get_row)
        route("GET", r"/orgs/(?P<org>[^/]+)/tables/(?P<table>[^/]+)/find", self.find_row)
        route("POST", r"/orgs/(?P<org>[^/]+)/reset", self.reset)
        route("GET", r"/orgs/(?P<org>[^/]+)/faults", lambda r: [f.to_json() for f in self._org(r).faults.rules])
        route("POST", r"/orgs/(?P<org>[^/]+)/faults", self.add_fault)
        route("DELETE", r"/orgs/(?P<org>[^/]+)/faults", self.clear_faults)
        route("GET", r"/orgs/(?P<org>[^/]+)/limits", lambda r: self._org(r).limits.to_json())
        route("PUT", r"/orgs/(?P<org>[^/]+)/limits", self.set_limits)
        route("GET", r"/orgs/(?P<org>[^/]+)/latency", lambda r: self._org(r).latency.to_json())
        route("PUT", r"/orgs/(?P<org>[^/]+)/latency", self.set_latency)
        route("GET", r"/orgs/(?P<org>[^/]+)/counters", lambda r: self._org(r).counters.to_json())
        route("DELETE", r"/orgs/(?P<org>[^/]+)/counters", self.reset_counters)
        route("POST", r"/orgs/(?P<org>[^/]+)/change-tracking/expire", self.expire_tokens)

    def _route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}/?$"), handler))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        status, payload = self.dispatch(scope["method"], scope["path"], scope.get("query_string", b"").decode(), body)
        data = json.dumps(payload).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def dispatch(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        allowed = False
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if not match:
                continue
            allowed = True
            if route_method != method:
                continue
            request = AdminRequest(method, match.groupdict(), dict(parse_qsl(query)), body)
            try:
                return 200, handler(request)
            except AdminError as exc:
                return exc.status, {"error": str(exc)}
            except errors.DataverseError as exc:
                return exc.status, exc.body()
            except (KeyError, ValueError, TypeError) as exc:
                return 400, {"error": str(exc)}
        return (405, {"error": "method not allowed"}) if allowed else (404, {"error": f"no admin route {path}"})

    # --- handlers --------------------------------------------------------------------------------------------

    def _org(self, request: AdminRequest) -> Org:
        name = request.params["org"]
        if name not in self.emulator.orgs:
            raise AdminError(404, f"no org {name!r}")
        return self.emulator.orgs[name]

    def _table(self, request: AdminRequest) -> str:
        org, table = self._org(request), request.params["table"]
        if table not in org.schema.tables:
            raise AdminError(404, f"org {org.name!r} has no table {table!r}")
        return table

    def list_orgs(self, request: AdminRequest) -> list[dict[str, Any]]:
        return [self._describe(org) for org in self.emulator.orgs.values()]

    def get_org(self, request: AdminRequest) -> dict[str, Any]:
        org = self._org(request)
        return {
            **self._describe(org),
            "counts": org.counts(),
            "limits": org.limits.to_json(),
            "latency": org.latency.to_json(),
            "faults": [f.to_json() for f in org.faults.rules],
        }

    @staticmethod
    def _describe(org: Org) -> dict[str, Any]:
        return {
            "name": org.name,
            "url": org.url,
            "tenant_id": org.tenant_id,
            "organization_id": org.organization_id,
            "tables": sorted(org.schema.tables),
            "app_users": [{"app_id": u.app_id, "systemuser_id": u.systemuser_id} for u in org.app_users.values()],
        }

    def list_rows(self, request: AdminRequest) -> dict[str, Any]:
        org, table = self._org(request), self._table(request)
        rows = org.rows(table)
        top = request.query.get("top")
        return {"count": len(rows), "value": rows[: int(top)] if top else rows}

    def get_row(self, request: AdminRequest) -> dict[str, Any]:
        org, table = self._org(request), self._table(request)
        row = org.row(table, request.params["id"])
        if row is None:
            raise AdminError(404, f"no {table} row {request.params['id']}")
        return row

    def find_row(self, request: AdminRequest) -> dict[str, Any]:
        """By alternate key: `?accountnumber=A-1` (numbers in the query are parsed as numbers)."""
        org, table = self._org(request), self._table(request)
        values: dict[str, Any] = {k: _number_or_text(v) for k, v in request.query.items()}
        row = org.row(table, **values)
        if row is None:
            raise AdminError(404, f"no {table} row with {values}")
        return row

    def seed_rows(self, request: AdminRequest) -> dict[str, Any]:
        org, table = self._org(request), self._table(request)
        body = request.json()
        records = body.get("records") if isinstance(body, dict) else body
        if not isinstance(records, list):
            raise AdminError(400, 'send {"records": [...]} or a JSON list of rows')
        return {"ids": org.seed(table, records)}

    def reset(self, request: AdminRequest) -> dict[str, Any]:
        options = request.json() or {}
        org = self._org(request)
        org.reset(**{k: bool(options.get(k, True)) for k in ("data", "counters", "faults", "throttle")})
        return {"reset": True}

    def add_fault(self, request: AdminRequest) -> dict[str, Any]:
        rule = FaultRule.from_json(request.json())
        self._org(request).add_fault(rule)
        return rule.to_json()

    def clear_faults(self, request: AdminRequest) -> dict[str, Any]:
        self._org(request).clear_faults()
        return {"cleared": True}

    def set_limits(self, request: AdminRequest) -> dict[str, Any]:
        changes = _only_fields(request.json(), ServiceProtectionLimits)
        return self._org(request).set_limits(**changes).to_json()

    def set_latency(self, request: AdminRequest) -> dict[str, Any]:
        changes = _only_fields(request.json(), LatencyModel)
        return self._org(request).set_latency(**changes).to_json()

    def reset_counters(self, request: AdminRequest) -> dict[str, Any]:
        self._org(request).reset(data=False, faults=False, throttle=False)
        return {"reset": True}

    def expire_tokens(self, request: AdminRequest) -> dict[str, Any]:
        org = self._org(request)
        org.expire_change_tokens()
        return {"expired_before_version": org.change_token_floor}


def _only_fields(data: Any, cls: type) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise AdminError(400, "send a JSON object")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise AdminError(400, f"unknown fields {sorted(unknown)}; allowed: {sorted(names)}")
    return data


def _number_or_text(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return value
