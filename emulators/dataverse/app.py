"""The ASGI application of one emulated environment: `https://127.0.0.1:<port>/api/data/v9.2/...`.

Per request, in this order: injected faults; bearer token validation (signature, `aud` = org URL, `tid` = org
tenant, expiry) and application user lookup; impersonation and bypass headers; service protection limits; the
operation itself (synchronously, no awaits inside state changes); then the latency model's delay (asyncio.sleep,
no CPU) before the response is sent. Every response carries `REQ_ID` / `x-ms-service-request-id`,
`OData-Version: 4.0`, and for authenticated callers `x-ms-ratelimit-burst-remaining-xrm-requests`,
`x-ms-ratelimit-time-remaining-xrm-requests` and `x-ms-dop-hint` (PAD/api-limits.md, PAD/send-parallel-requests.md).

401 answers carry `WWW-Authenticate: Bearer authorization_uri=<authority>/<tenant>/oauth2/authorize,
resource_id=<org url>` (the challenge clients use to discover the authority: PAD/authenticate-oauth.md) and no
body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from emulators.dataverse import errors
from emulators.dataverse.batch import BatchRunner
from emulators.dataverse.faults import FaultKind, FaultRule
from emulators.dataverse.limits import Cost
from emulators.dataverse.odata import DANGEROUS_PATH_CHARACTERS, parse_prefer
from emulators.dataverse.render import ApiRequest, ApiResponse, Call, error_response
from emulators.dataverse.security import CallContext, Principal, app_principal, resolve_impersonation, user_principal
from emulators.tokens import InvalidAccessToken, TokenAuthority

if TYPE_CHECKING:
    from emulators.dataverse.org import Org

log = logging.getLogger(__name__)
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_API_PATH = re.compile(r"^/api/data/v9\.[0-2](/.*)?$")


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def request_headers(scope: Scope) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    prefer: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "prefer":
            prefer.append(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers, prefer


async def send_response(send: Send, response: ApiResponse, extra: list[tuple[str, str]]) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (*extra, *response.headers)]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def abort_connection(send: Send) -> None:
    """Drop the connection without answering: an RST the client sees as 'connection reset by peer'.

    uvicorn's `send` is a bound method of its per-request cycle, which holds the transport. SO_LINGER 0 turns
    the close into a reset. The cycle is marked disconnected so uvicorn does not log a missing response.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("fault injection: no transport to abort")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    cycle.disconnected = True  # type: ignore[union-attr]


class OrgApp:
    def __init__(self, org: Org, authority: TokenAuthority, authority_host: str) -> None:
        self.org = org
        self.authority = authority
        self.authority_host = authority_host.rstrip("/")
        # Validated tokens by their text: a resource server validates a bearer token once and reuses the result
        # until it expires (signature checks dominate the CPU of small requests otherwise).
        self._validated: dict[str, dict[str, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        request_id = str(uuid.uuid4())
        base = [("REQ_ID", request_id), ("x-ms-service-request-id", request_id), ("OData-Version", "4.0")]
        org = self.org
        method, path = scope["method"], scope["path"]
        fired = org.faults.fire(method, path)
        if fired.delay_seconds:
            org.counters.faults[FaultKind.SLOW.value] += 1
            await asyncio.sleep(fired.delay_seconds)
        lose_response = fired.terminal is not None and fired.terminal.kind is FaultKind.RESET_AFTER
        if fired.terminal is not None:
            org.counters.faults[fired.terminal.kind.value] += 1
        if fired.terminal is not None and not lose_response:
            if fired.terminal.kind is FaultKind.RESET:
                await abort_connection(send)
                return
            response = self._fault_response(fired.terminal)
            org.counters.responses[str(response.status)] += 1
            await send_response(send, response, base)
            return
        request = self._request(scope, body)
        try:
            ctx = self._authorize(path, request.headers)
        except errors.DataverseError as exc:
            org.counters.responses[str(exc.status)] += 1
            await (abort_connection(send) if lose_response else send_response(send, self._error(exc), base))
            return
        await self._serve(Call(request, ctx, Cost()), send, base, lose_response=lose_response)

    def _request(self, scope: Scope, body: bytes) -> ApiRequest:
        headers, prefer = request_headers(scope)
        match = _API_PATH.match(scope["path"])
        raw_query = scope.get("query_string", b"").decode("latin-1")
        return ApiRequest(
            method=scope["method"],
            path=(match.group(1) or "").lstrip("/") if match else scope["path"],
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            headers=headers,
            body=body,
            prefer=parse_prefer(prefer),
            raw_query=raw_query,
            url=f"{self.org.url}{scope['path']}" + (f"?{raw_query}" if raw_query else ""),
        )

    async def _serve(self, call: Call, send: Send, base: list[tuple[str, str]], *, lose_response: bool = False) -> None:
        org, cost = self.org, call.cost
        key = call.ctx.caller.throttle_key
        refused = org.throttle.admit(key)
        if refused is not None:
            org.counters.throttled[refused.code] += 1
            org.counters.responses["429"] += 1
            await send_response(send, error_response(refused), [*base, *self._limit_headers(key)])
            return
        try:
            response = self._execute(call)
            duration_ms = org.latency.request_ms(cost)
            org.throttle.record_execution(key, duration_ms)
            org.counters.execution_ms += duration_ms
            org.counters.add(cost, committed=response.status < 400 or cost.kind == "$batch")
            org.counters.responses[str(response.status)] += 1
            if duration_ms > 0:
                await asyncio.sleep(duration_ms / 1000)
        finally:
            org.throttle.finish(key)
        if lose_response:  # executed and committed; the client never learns it
            await abort_connection(send)
            return
        await send_response(send, response, [*base, *self._limit_headers(key)])

    def _execute(self, call: Call) -> ApiResponse:
        org, request = self.org, call.req
        try:
            if request.path.startswith("/"):  # not under /api/data/v9.x
                raise errors.resource_not_found(request.path.strip("/").split("/")[0] or "/")
            if request.path == "$batch":
                if request.method != "POST":
                    raise errors.method_not_allowed(request.method)
                resolve = lambda headers: self._context(call.ctx.caller, headers)  # noqa: E731
                return BatchRunner(org.api, request, resolve, call.cost).run()
            return _applied_annotations(call.req, org.api.handle(call))
        except errors.DataverseError as exc:
            return self._error(exc)
        except Exception:  # a bug in the emulator: answer like Dataverse's generic failure, keep the trace
            log.exception("Dataverse emulator failed on %s %s", request.method, request.url)
            return error_response(errors.DataverseError(500, errors.UNEXPECTED, "An unexpected error occurred."))

    # --- auth ----------------------------------------------------------------------------------------------

    def _authorize(self, path: str, headers: Mapping[str, str]) -> CallContext:
        relative = path.split("/api/data/", 1)[-1]
        for char in relative:
            if char in DANGEROUS_PATH_CHARACTERS:
                raise errors.dangerous_path(char)
            if char == "+":
                raise errors.double_escaping()
        principal = self._principal(headers.get("authorization", ""))
        return self._context(principal, headers)

    def _context(self, caller: Principal, headers: Mapping[str, str]) -> CallContext:
        org = self.org
        return resolve_impersonation(caller, headers, org.users_by_object_id, org.users_by_systemuser_id)

    def _principal(self, authorization: str) -> Principal:
        org = self.org
        if org.url is None:
            raise errors.DataverseError(503, "", f"org {org.name!r} has no URL yet (set_org_url was not called)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._unauthorized()
        claims = self._validate(token.strip())
        app_id = str(claims.get("appid") or claims.get("azp") or "").lower()
        app_user = org.app_users.get(app_id)
        if app_user is not None:
            return app_principal(app_user)
        person = org.users_by_object_id.get(str(claims.get("oid", "")).lower())
        if person is not None and claims.get("idtyp") != "app":
            return user_principal(person)
        raise errors.not_a_member()

    def forget_tokens(self) -> None:
        self._validated.clear()

    def _validate(self, token: str) -> dict[str, Any]:
        org = self.org
        claims = self._validated.get(token)
        if claims is None:
            try:
                claims = self.authority.validate(token, audience=[f"{org.url}", f"{org.url}/"], tenant_id=org.tenant_id)
            except InvalidAccessToken:
                raise self._unauthorized() from None
            if len(self._validated) >= 1024:
                self._validated.clear()
            self._validated[token] = claims
        if claims["exp"] <= time.time():
            self._validated.pop(token, None)
            raise self._unauthorized()
        return claims

    def _unauthorized(self) -> errors.DataverseError:
        challenge = (
            f"Bearer authorization_uri={self.authority_host}/{self.org.tenant_id}/oauth2/authorize, "
            f"resource_id={self.org.url}/"
        )
        return errors.DataverseError(401, "", "", headers={"WWW-Authenticate": challenge})

    def _error(self, exc: errors.DataverseError) -> ApiResponse:
        if exc.status == 401:
            return ApiResponse(401, list(exc.headers.items()))
        return error_response(exc)

    # --- faults and limits -----------------------------------------------------------------------------------

    def _fault_response(self, rule: FaultRule) -> ApiResponse:
        if rule.kind is FaultKind.EXPIRED_TOKEN:
            return self._error(self._unauthorized())
        if rule.kind is FaultKind.THROTTLE:
            error = self.org.limits.throttled(rule.limit_code, rule.retry_after if rule.retry_after is not None else 1)
            self.org.counters.throttled[rule.limit_code] += 1
            return error_response(error)
        error = errors.service_unavailable(int(rule.kind.value))
        if rule.retry_after is not None:  # an outage announcing its length (RFC 9110 §10.2.3)
            error.headers["Retry-After"] = str(rule.retry_after)
        return error_response(error)

    def _limit_headers(self, key: str) -> list[tuple[str, str]]:
        requests_left, seconds_left = self.org.throttle.remaining(key)
        return [
            ("x-ms-ratelimit-burst-remaining-xrm-requests", str(requests_left)),
            # Observed as seconds with two decimals (e.g. "1,199.98"); the docs only say "combined duration".
            ("x-ms-ratelimit-time-remaining-xrm-requests", f"{seconds_left:,.2f}"),
            ("x-ms-dop-hint", str(self.org.config.dop_hint)),
        ]


def _applied_annotations(request: ApiRequest, response: ApiResponse) -> ApiResponse:
    """Echo `odata.include-annotations` in Preference-Applied, merged with other applied preferences."""
    wanted = request.prefer.include_annotations
    if not wanted or request.method != "GET" or response.status != 200:
        return response
    applied = f'odata.include-annotations="{wanted}"'
    others = [(k, v) for k, v in response.headers if k.lower() != "preference-applied"]
    existing = response.header("Preference-Applied")
    response.headers = [*others, ("Preference-Applied", f"{existing},{applied}" if existing else applied)]
    return response


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
