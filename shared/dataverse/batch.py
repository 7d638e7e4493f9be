"""`$batch` codec: OData 4.0 multipart/mixed requests and responses as Dataverse documents them.

Format (learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api):
- request `Content-Type: multipart/mixed; boundary="batch_<id>"`; each operation is a part with
  `Content-Type: application/http` and `Content-Transfer-Encoding: binary` holding a request line, headers, a blank
  line and an optional JSON body (`Content-Type: application/json; type=entry`);
- a change set (atomic, executed as ExecuteTransaction) is a part of type `multipart/mixed; boundary=
  "changeset_<id>"`; every operation inside carries a `Content-ID`;
- at most 1000 operations per batch; the response uses its own boundaries (`batchresponse_<guid>`,
  `changesetresponse_<guid>`), keeps the request order and echoes `Content-ID`.
Lines end with CRLF as RFC 2046 requires; the decoder also accepts LF-only bodies (the docs render LF).
Inner POST/PATCH parts carry `Content-Length`: without it Dataverse has been observed to fail with 0x80048d19
"stream not readable" (github.com/ryanmichaeljames/dataverse-mcp/releases/tag/v1.3.2).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.structures import CaseInsensitiveDict
from requests_toolbelt.multipart.decoder import (
    ImproperBodyPartContentException,
    MultipartDecoder,
    NonMultipartContentTypeException,
)

MAX_BATCH_OPERATIONS = 1000  # "Batch requests can contain up to 1000 individual requests" (execute-batch doc)
CRLF = "\r\n"


class BatchFormatError(ValueError):
    """A `$batch` response that is not the documented multipart format."""


@dataclass(frozen=True)
class BatchOperation:
    """One request inside a `$batch`. `url` is relative to the service root (e.g. `accounts(...)`)."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None


@dataclass(frozen=True)
class ChangeSet:
    """Operations executed atomically: any failure rolls back all of them."""

    operations: Sequence[BatchOperation]
    boundary: str | None = None  # generated when None


@dataclass(frozen=True)
class BatchResponsePart:
    status: int
    reason: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    content_id: str | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


def encode_batch(
    items: Sequence[BatchOperation | ChangeSet], *, service_path: str, boundary: str | None = None
) -> tuple[bytes, str]:
    """The body and Content-Type of a `$batch` request. `service_path` is e.g. `/api/data/v9.2`."""
    count = sum(len(i.operations) if isinstance(i, ChangeSet) else 1 for i in items)
    if not 0 < count <= MAX_BATCH_OPERATIONS:
        raise ValueError(f"a $batch holds 1 to {MAX_BATCH_OPERATIONS} operations, got {count}")
    boundary = boundary or f"batch_{uuid.uuid4()}"
    chunks: list[str] = []
    for item in items:
        chunks.append(f"--{boundary}{CRLF}")
        if isinstance(item, ChangeSet):
            chunks.append(_encode_changeset(item, service_path))
        else:
            chunks.append(_encode_operation(item, service_path))
    chunks.append(f"--{boundary}--{CRLF}")
    return "".join(chunks).encode("utf-8"), f'multipart/mixed; boundary="{boundary}"'


def _encode_changeset(changeset: ChangeSet, service_path: str) -> str:
    boundary = changeset.boundary or f"changeset_{uuid.uuid4()}"
    chunks = [f'Content-Type: multipart/mixed; boundary="{boundary}"{CRLF}{CRLF}']
    for index, operation in enumerate(changeset.operations, start=1):
        if operation.method.upper() == "GET":
            raise ValueError("GET requests are not allowed in a change set")
        if operation.content_id is None:  # Dataverse requires Content-ID inside change sets
            operation = dataclasses.replace(operation, content_id=str(index))  # noqa: PLW2901
        chunks.append(f"--{boundary}{CRLF}")
        chunks.append(_encode_operation(operation, service_path))
    chunks.append(f"--{boundary}--{CRLF}")
    return "".join(chunks)


def _encode_operation(operation: BatchOperation, service_path: str) -> str:
    url = operation.url if operation.url.startswith(("/", "$", "https://")) else f"{service_path}/{operation.url}"
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if operation.content_id is not None:
        lines.append(f"Content-ID: {operation.content_id}")
    lines += ["", f"{operation.method.upper()} {url} HTTP/1.1"]
    body = ""
    if operation.body is not None:
        body = json.dumps(operation.body, ensure_ascii=False, separators=(",", ":"))
        lines.append("Content-Type: application/json; type=entry")
        lines.append(f"Content-Length: {len(body.encode('utf-8'))}")
    lines += [f"{name}: {value}" for name, value in operation.headers.items()]
    lines += ["", body]
    return CRLF.join(lines) + CRLF


def decode_batch_response(content: bytes, content_type: str) -> list[BatchResponsePart]:
    """The responses of a `$batch`, in request order; change set responses are flattened in place."""
    try:
        parts = MultipartDecoder(_normalize_newlines(content), content_type).parts
    except (NonMultipartContentTypeException, ImproperBodyPartContentException, AttributeError) as exc:
        raise BatchFormatError(f"not a multipart $batch response ({type(exc).__name__})") from None
    results: list[BatchResponsePart] = []
    for part in parts:
        part_type = _header(part.headers, "Content-Type")
        if part_type.lower().startswith("multipart/mixed"):
            results.extend(decode_batch_response(part.content, part_type))
        else:
            results.append(_decode_http_part(part.content, _header(part.headers, "Content-ID") or None))
    return results


def _normalize_newlines(content: bytes) -> bytes:
    # JSON bodies cannot hold raw line breaks inside strings, so rewriting LF to CRLF never changes a value.
    return content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _header(headers: Mapping[bytes, bytes], name: str) -> str:
    value = headers.get(name.encode("ascii"))
    return value.decode("utf-8").strip() if value else ""


def _decode_http_part(content: bytes, content_id: str | None) -> BatchResponsePart:
    head, _, body = content.lstrip(b"\r\n").partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("utf-8").split(CRLF)
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdecimal():
        raise BatchFormatError(f"bad status line in $batch response part: {status_line[:80]!r}")
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    reason = fields[2] if len(fields) > 2 else ""
    return BatchResponsePart(int(fields[1]), reason, headers, body.rstrip(b"\r\n"), content_id)
