"""A tiny scripted stand-in for the Dataverse Web API at the transport level, for fast unit tests of the write
engine (the real emulator is used by tests/client/integration). It understands just enough: UpsertMultiple /
CreateMultiple / UpdateMultiple (standard-table semantics: one bad target fails the whole request), `$batch`
(parsed with the stdlib email parser), `$filter` on one column for key resolution, and scripted faults."""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from requests.structures import CaseInsensitiveDict

from shared.dataverse.errors import DataverseError
from shared.dataverse.pipeline import HttpRequest, HttpResponse

BAD = "BAD"  # a record whose data has {"name": "BAD..."} fails with a validation error
DUPLICATE = {"error": {"code": "0x80040237", "message": "Cannot insert duplicate key."}}
DUPLICATE_KEY = {"error": {"code": "0x80060892", "message": "A record that has the attribute values already exists."}}


@dataclass
class FakeDataverse:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # accountnumber -> row
    bulk_supported: bool = True
    max_targets: int | None = None  # more targets than this -> 413
    faults: deque[HttpResponse] = field(default_factory=deque)  # answered before anything else
    resets_after_processing: int = 0  # bulk requests processed, then the connection drops (ambiguous failure)
    queries_see_nothing: bool = False  # `$filter` finds no row (as if another writer created it just after)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.url).path.split("/api/data/v9.2/", 1)[1]
        with self.lock:
            self.requests.append(f"{request.method} {path}")
            if self.faults:
                return self.faults.popleft()
        if path.endswith("UpsertMultiple") or path.endswith("CreateMultiple"):
            response = self._bulk(json.loads(request.body or b"{}")["Targets"], path.rsplit(".", 1)[1])
            with self.lock:
                if response.ok and self.resets_after_processing > 0:
                    self.resets_after_processing -= 1
                    reset = DataverseError(None, None, "ConnectionError: connection reset")
                    return HttpResponse.failed(reset, maybe_delivered=True)
            return response
        if path == "$batch":
            return self._batch(request)
        if request.method == "GET" and path == "accounts":
            return self._query(request.url)
        if request.method == "GET" and path.startswith("accounts("):
            found = self._by_id({"accountid": path[len("accounts(") : path.index(")")]})
            return (
                _json(200, {"accountid": "x"})
                if found
                else _json(404, {"error": {"code": "0x80040217", "message": "account Does Not Exist"}})
            )
        if request.method == "GET" and path.startswith("EntityDefinitions"):
            return _json(200, {"EntitySetName": "accounts", "PrimaryIdAttribute": "accountid", "Keys": []})
        return _json(404, {"error": {"code": "0x80060888", "message": f"Resource not found for the segment '{path}'."}})

    # --- operations -----------------------------------------------------------------------------------------

    def _bulk(self, targets: list[dict[str, Any]], action: str) -> HttpResponse:
        if not self.bulk_supported:
            return _json(
                400,
                {
                    "error": {
                        "code": "0x80040800",
                        "message": f"The '{action}' message is not supported for this table.",
                    }
                },
            )
        if self.max_targets is not None and len(targets) > self.max_targets:
            return _json(413, {"error": {"code": "0x8004418a", "message": "Request is too large."}})
        if any(str(t.get("name", "")).startswith(BAD) for t in targets):
            return _json(400, {"error": {"code": "0x80044331", "message": "A validation error occurred."}})
        if action == "CreateMultiple" and any(self._by_id(t) for t in targets):
            return _json(400, DUPLICATE)
        if any(self._key_taken_by_another_row(t) for t in targets):
            return _json(412, DUPLICATE_KEY)
        with self.lock:
            for target in targets:
                self._upsert(
                    _key_of(target.get("@odata.id")) or target.get("accountnumber") or self._by_id(target), target
                )
        return HttpResponse(204, CaseInsensitiveDict({"x-ms-service-request-id": "bulk-1"}))

    def _upsert(self, key: str | None, values: dict[str, Any]) -> None:
        row = self.rows.setdefault(
            key or str(uuid.uuid4()), {"accountid": values.get("accountid") or str(uuid.uuid4())}
        )
        row.update({k: v for k, v in values.items() if not k.startswith("@")})
        if key:
            row["accountnumber"] = key

    def _key_taken_by_another_row(self, target: dict[str, Any]) -> bool:
        row = self.rows.get(str(target.get("accountnumber")))
        return row is not None and "accountid" in target and row.get("accountid") != target["accountid"]

    def _by_id(self, target: dict[str, Any]) -> str | None:
        return next((k for k, row in self.rows.items() if row.get("accountid") == target.get("accountid")), None)

    def _batch(self, request: HttpRequest) -> HttpResponse:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + (request.body or b"")
        )
        answers = []
        for part in message.walk():
            if part.is_multipart():
                continue
            head, _, body = str(part.get_payload()).replace("\r\n", "\n").partition("\n\n")
            method, url, _ = head.split("\n")[0].split(" ")
            data = json.loads(body) if body.strip() else {}
            answers.append(self._batch_part(method, url, data))
        boundary = "batchresponse_x"
        text = (
            "".join(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\r\n{body}\r\n"
                for status, body in answers
            )
            + f"--{boundary}--\r\n"
        )
        return HttpResponse(
            200, CaseInsensitiveDict({"Content-Type": f"multipart/mixed; boundary={boundary}"}), text.encode()
        )

    def _batch_part(self, method: str, url: str, data: dict[str, Any]) -> tuple[int, str]:
        if str(data.get("name", "")).startswith(BAD):
            return 400, json.dumps(
                {"error": {"code": "0x80044331", "message": f"A validation error occurred: {data['name']}"}}
            )
        key = _key_of(url)
        with self.lock:
            if method == "POST" and self._by_id(data):
                return 400, json.dumps(DUPLICATE)
            if method == "DELETE":
                return (
                    (204, "")
                    if self.rows.pop(key or "", None)
                    else (404, json.dumps({"error": {"code": "0x80040217", "message": "account Does Not Exist"}}))
                )
            self._upsert(key or data.get("accountnumber"), data)
        return 204, ""

    def _query(self, url: str) -> HttpResponse:
        query = parse_qs(urlsplit(url).query)
        wanted = re.findall(r"accountnumber eq '((?:[^']|'')*)'", unquote(query["$filter"][0]))
        with self.lock:
            value = [row for key, row in self.rows.items() if key in {w.replace("''", "'") for w in wanted}]
            if self.queries_see_nothing:
                value = []
        return _json(200, {"value": value})


def _key_of(path: str | None) -> str | None:
    if not path:
        return None
    match = re.search(r"accountnumber='((?:[^']|'')*)'", unquote(path))
    return match.group(1).replace("''", "'") if match else None


def _json(status: int, payload: Any) -> HttpResponse:
    return HttpResponse.from_http(
        status, CaseInsensitiveDict({"Content-Type": "application/json"}), json.dumps(payload).encode()
    )
