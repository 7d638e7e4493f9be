"""A request pipeline in the azure-core style: small policies, one concern each, around one transport.

    HeadersPolicy -> RetryPolicy -> AuthPolicy -> ConcurrencyPolicy -> LoggingPolicy -> transport

Every call returns an `HttpResponse`; failures without an HTTP answer (connection reset, timeout, budget spent)
come back with `status=None` and an `error`, so callers handle one shape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from requests.structures import CaseInsensitiveDict

from shared.dataverse.errors import DataverseError, parse_error

REQUEST_ID_HEADERS = ("x-ms-service-request-id", "REQ_ID")  # `$batch` response parts carry REQ_ID


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """Dataverse's id of a request (of a whole response, or of one `$batch` part), for logs and dead letters."""
    return next((headers[h] for h in REQUEST_ID_HEADERS if h in headers), None)


@dataclass
class HttpRequest:
    method: str
    url: str
    deadline: float  # time.monotonic() value; nothing is sent after it
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    kind: str = ""  # for logs and counters: "UpsertMultiple", "$batch", "GET EntityDefinitions"...


@dataclass
class HttpResponse:
    status: int | None
    headers: CaseInsensitiveDict[str] = field(default_factory=CaseInsensitiveDict)
    body: bytes = b""
    error: DataverseError | None = None  # set for every failure (status >= 400 or no response)
    attempts: int = 1
    maybe_delivered_before: bool = False  # an earlier attempt may have reached the server (ambiguous failure)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def request_id(self) -> str | None:
        return request_id_of(self.headers)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @classmethod
    def from_http(cls, status: int, headers: CaseInsensitiveDict[str], body: bytes) -> HttpResponse:
        response = cls(status, headers, body)
        if status >= 400:
            response.error = parse_error(status, body, response.request_id)
        return response

    @classmethod
    def failed(cls, error: DataverseError, *, maybe_delivered: bool = False) -> HttpResponse:
        return cls(None, CaseInsensitiveDict(), b"", error, maybe_delivered_before=maybe_delivered)


Send = Callable[[HttpRequest], HttpResponse]


class Policy(Protocol):
    def send(self, request: HttpRequest, next_send: Send) -> HttpResponse: ...


class Pipeline:
    def __init__(self, policies: Sequence[Policy], transport: Send) -> None:
        self._send = transport
        for policy in reversed(policies):
            self._send = _bind(policy, self._send)

    def send(self, request: HttpRequest) -> HttpResponse:
        if time.monotonic() >= request.deadline:
            return HttpResponse.failed(budget_spent(request))
        return self._send(request)


def _bind(policy: Policy, next_send: Send) -> Send:
    return lambda request: policy.send(request, next_send)


def budget_spent(request: HttpRequest) -> DataverseError:
    return DataverseError(None, None, f"time budget of the call spent before {request.kind or request.method} was sent")
