"""`$batch` as documented in PAD/webapi/execute-batch-operations-using-web-api.md (OData 4.0 multipart/mixed).

- Request: `multipart/mixed; boundary=batch_<id>`; parts are `application/http` requests or change sets
  (`multipart/mixed; boundary=changeset_<id>`). CRLF and LF line endings are both accepted (the docs render LF;
  RFC 2046 uses CRLF; Dataverse itself rejects some LF-only bodies, see the troubleshooting article, but a client
  that sends CRLF works with both).
- At most 1000 operations (change set members included); no nested batches; GET is not allowed in a change set.
- A change set is atomic: all its requests commit or none (ExecuteTransaction). `Content-ID: n` names a created
  row that later requests of the same change set reference as `$n` (URL) or as an `@odata.bind` / `@odata.id`
  value; an unknown or forward reference fails.
- Requests run one after another; responses come in request order, separated by `--batchresponse_<guid>`, change
  sets by `--changesetresponse_<guid>`, with Content-ID echoed and `Location` + `OData-EntityId` for creates.
- Without `Prefer: odata.continue-on-error` the first failure stops processing and the outer status is the
  failure's (the documented example answers `400` with one error part); with it, the outer status is 200 and
  every request has its own response part.
- For service protection the whole batch is one request; its execution time is the sum of its operations.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from emulators.dataverse import errors
from emulators.dataverse.limits import Cost
from emulators.dataverse.odata import parse_prefer
from emulators.dataverse.render import JSON_TYPE, ApiRequest, ApiResponse, Call, dumps, error_response
from emulators.dataverse.security import CallContext
from emulators.dataverse.store import Transaction

if TYPE_CHECKING:
    from emulators.dataverse.webapi import WebApi

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_SERVICE_PATH = re.compile(r"^/?api/data/v9\.\d/", re.IGNORECASE)
_CONTENT_REF = re.compile(r"^\$(\d+)(?=/|$|\?)")
CRLF = "\r\n"
# Headers of the outer request that apply to its parts unless a part sets its own.
INHERITED = (
    "callerobjectid",
    "mscrmcallerid",
    "mscrm.bypassbusinesslogicexecution",
    "mscrm.bypasscustompluginexecution",
)

ContextResolver = Callable[[Mapping[str, str]], CallContext]


@dataclass
class Part:
    method: str
    url: str
    headers: dict[str, str]  # the embedded request's headers, lower-case
    body: str
    content_id: str | None = None


@dataclass
class ChangeSet:
    parts: list[Part] = field(default_factory=list)


# --- parsing -----------------------------------------------------------------------------------------------


def boundary_of(content_type: str) -> str:
    match = _BOUNDARY.search(content_type or "")
    if not content_type.lower().startswith("multipart/mixed") or not match:
        raise errors.batch_format("The batch request must have a 'multipart/mixed' Content-Type with a boundary.")
    return match.group(1)


def _split(lines: list[str], boundary: str) -> list[list[str]]:
    delimiter, closing = f"--{boundary}", f"--{boundary}--"
    parts: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        marker = line.rstrip()
        if marker == closing:
            if current is not None:
                parts.append(current)
            return parts
        if marker == delimiter:
            if current is not None:
                parts.append(current)
            current = []
        elif current is not None:
            current.append(line)
    raise errors.batch_format(f"The batch is missing its closing boundary '{closing}'.")


def _headers(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    for index, line in enumerate(lines):
        if line.strip() == "":
            return headers, lines[index + 1 :]
        name, sep, value = line.partition(":")
        if not sep:
            raise errors.batch_format(f"Malformed header line in batch part: '{line}'.")
        headers[name.strip().lower()] = value.strip()
    return headers, []


def _part(lines: list[str]) -> Part | ChangeSet:
    mime, rest = _headers(lines)
    content_type = mime.get("content-type", "")
    if content_type.lower().startswith("multipart/mixed"):
        members = [_part(p) for p in _split(rest, boundary_of(content_type))]
        if any(isinstance(m, ChangeSet) for m in members):
            raise errors.batch_format("Change sets cannot be nested.")
        return ChangeSet([m for m in members if isinstance(m, Part)])
    if not content_type.lower().startswith("application/http"):
        raise errors.batch_format(f"Batch parts must be 'application/http', not '{content_type}'.")
    while rest and rest[0].strip() == "":
        rest = rest[1:]
    if not rest:
        raise errors.batch_format("A batch part has no request line.")
    words = rest[0].split()
    if len(words) < 2:
        raise errors.batch_format(f"Malformed request line in batch part: '{rest[0]}'.")
    request_headers, body_lines = _headers(rest[1:])
    while body_lines and body_lines[-1].strip() == "":
        body_lines.pop()
    content_id = mime.get("content-id") or request_headers.get("content-id")
    return Part(words[0].upper(), words[1], request_headers, "\n".join(body_lines), content_id)


def parse(body: bytes, content_type: str) -> list[Part | ChangeSet]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.batch_format("The batch request body is not UTF-8.") from None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    return [_part(p) for p in _split(lines, boundary_of(content_type))]


# --- execution ---------------------------------------------------------------------------------------------


class BatchRunner:
    def __init__(self, api: WebApi, outer: ApiRequest, resolve_context: ContextResolver, cost: Cost) -> None:
        self.api = api
        self.outer = outer
        self.resolve_context = resolve_context
        self.cost = cost

    def run(self) -> ApiResponse:
        self.cost.kind = "$batch"
        items = parse(self.outer.body, self.outer.headers.get("content-type", ""))
        operations = sum(len(i.parts) if isinstance(i, ChangeSet) else 1 for i in items)
        limit = self.api.org.config.batch_max_operations
        if operations > limit:
            raise errors.batch_too_many_parts(limit)
        keep_going = self.outer.prefer.continue_on_error
        boundary = f"batchresponse_{uuid.uuid4()}"
        chunks: list[str] = []
        failed_status: int | None = None
        for item in items:
            if isinstance(item, ChangeSet):
                text, status = self._change_set(item)
            else:
                response = self._execute(item, None, {})
                text, status = _http_part(response, item.content_id), response.status
            chunks.append(text)
            if status >= 400 and not keep_going:
                failed_status = status
                break
        body = "".join(f"--{boundary}{CRLF}{chunk}{CRLF}" for chunk in chunks) + f"--{boundary}--{CRLF}"
        headers = [("Content-Type", f"multipart/mixed; boundary={boundary}")]
        if keep_going:
            headers.append(("Preference-Applied", "odata.continue-on-error"))
        return ApiResponse(failed_status or 200, headers, body.encode("utf-8"))

    def _change_set(self, change_set: ChangeSet) -> tuple[str, int]:
        txn = self.api.store.transaction()
        content_ids: dict[str, str] = {}
        answered: list[tuple[Part, ApiResponse]] = []
        committed = Cost()
        for part in change_set.parts:
            if part.method == "GET":
                response = error_response(errors.batch_format("GET requests are not allowed in a change set."))
            else:
                response = self._execute(part, txn, content_ids, committed)
            if response.status >= 400:
                txn.rollback()
                return _http_part(response, part.content_id), response.status
            entity = response.header("OData-EntityId")
            if part.content_id and entity:
                content_ids[part.content_id] = entity
            answered.append((part, response))
        txn.commit()
        self.cost.records_written += committed.records_written
        boundary = f"changesetresponse_{uuid.uuid4()}"
        inner = "".join(f"--{boundary}{CRLF}{_http_part(r, p.content_id)}{CRLF}" for p, r in answered)
        return f"Content-Type: multipart/mixed; boundary={boundary}{CRLF}{CRLF}{inner}--{boundary}--", 200

    def _execute(
        self, part: Part, txn: Transaction | None, content_ids: Mapping[str, str], committed: Cost | None = None
    ) -> ApiResponse:
        cost = Cost()
        try:
            request = self._request(part, content_ids)
            headers = {**{h: self.outer.headers[h] for h in INHERITED if h in self.outer.headers}, **part.headers}
            ctx = self.resolve_context(headers)
            response = self.api.handle(Call(request, ctx, cost), txn)
        except errors.DataverseError as exc:
            response = error_response(exc)
        self.cost.reads += cost.reads
        self.cost.rows_returned += cost.rows_returned
        self.cost.writes += cost.writes
        self.cost.bulk_records += cost.bulk_records
        self.cost.operations += cost.operations
        self.cost.batch_operations += 1
        if response.status < 400:
            if committed is not None:
                committed.records_written += cost.records_written  # counted when the change set commits
            else:
                self.cost.records_written += cost.records_written
        return response

    def _request(self, part: Part, content_ids: Mapping[str, str]) -> ApiRequest:
        url = part.url
        reference = _CONTENT_REF.match(url)
        if reference:
            entity = content_ids.get(reference.group(1))
            if entity is None:
                raise errors.content_id_missing(reference.group(0))
            url = entity + url[reference.end() :]
        split = urlsplit(url)
        path = unquote(split.path)
        if url.startswith(("http://", "https://")) or path.startswith("/"):
            path = _SERVICE_PATH.sub("", path.lstrip("/"))
        body = part.body
        if content_ids and "$" in body:
            body = _substitute_references(body, content_ids)
        return ApiRequest(
            method=part.method,
            path=path.lstrip("/"),
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=part.headers,
            body=body.encode("utf-8"),
            prefer=parse_prefer([part.headers["prefer"]] if "prefer" in part.headers else []),
            raw_query=split.query,
            url=url,
        )


def _substitute_references(body: str, content_ids: Mapping[str, str]) -> str:
    """Replace `"$n"` values (binds, @odata.id) with the entity they name; bodies are JSON."""
    try:
        document = json.loads(body)
    except ValueError:
        return body

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith("$") and value[1:].isdigit():
            if value[1:] not in content_ids:
                raise errors.content_id_missing(value)
            return content_ids[value[1:]]
        return value

    return dumps(walk(document)).decode("utf-8")


def _http_part(response: ApiResponse, content_id: str | None) -> str:
    mime = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        mime.append(f"Content-ID: {content_id}")
    status_line = f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}"
    headers: list[tuple[str, str]] = []
    others = [(k, v) for k, v in response.headers if k.lower() not in ("content-type", "odata-version")]
    if response.status >= 400:
        headers = [("REQ_ID", str(uuid.uuid4())), ("Content-Type", JSON_TYPE), ("OData-Version", "4.0"), *others]
    elif response.body:
        content_type = response.header("Content-Type") or JSON_TYPE
        if content_type == JSON_TYPE:
            content_type += "; odata.streaming=true"
        headers = [("Content-Type", content_type), ("OData-Version", "4.0"), *others]
    else:
        entity = response.header("OData-EntityId")
        location = [("Location", entity)] if entity else []
        headers = [("OData-Version", "4.0"), *location, *others]
    lines = [*mime, "", status_line, *(f"{k}: {v}" for k, v in headers), ""]
    return CRLF.join(lines) + CRLF + response.body.decode("utf-8")
