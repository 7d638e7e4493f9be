"""The one pooled `requests.Session` per environment.

- pool size >= the maximum parallelism, so concurrent requests never queue for a connection;
- no cookies: Dataverse's ARRAffinity cookie would pin every request to one web server, and the service
  protection limits are per server, so the docs advise disabling it (send-parallel-requests, "affinity cookie");
- explicit connect/read timeouts; the read timeout never extends past the call's deadline;
- `verify=` on every request (requests ignores `Session.verify` when REQUESTS_CA_BUNDLE is set, psf/requests#3829):
  the local cloud's CA bundle when configured, else default verification. Never disabled.
"""

from __future__ import annotations

import http.cookiejar
import time

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from shared.dataverse.errors import connection_error
from shared.dataverse.pipeline import HttpRequest, HttpResponse, budget_spent


class RequestsTransport:
    def __init__(
        self, *, pool_size: int, ca_bundle: str | None, connect_timeout: float = 10.0, read_timeout: float = 120.0
    ) -> None:
        self.session = requests.Session()
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # accept none
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0, pool_block=False)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._verify: str | bool = ca_bundle or True
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    def __call__(self, request: HttpRequest) -> HttpResponse:
        remaining = request.deadline - time.monotonic()
        if remaining <= 0:
            return HttpResponse.failed(budget_spent(request))
        timeout = (min(self._connect_timeout, remaining), min(self._read_timeout, remaining))
        try:
            answer = self.session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=timeout,
                verify=self._verify,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout as exc:
            return HttpResponse.failed(connection_error(exc), maybe_delivered=False)
        except requests.exceptions.RequestException as exc:
            # A read timeout or a reset after sending may have reached the server; a refused connect did not.
            delivered = not _failed_before_sending(exc)
            return HttpResponse.failed(connection_error(exc), maybe_delivered=delivered)
        return HttpResponse.from_http(answer.status_code, CaseInsensitiveDict(answer.headers), answer.content)

    def close(self) -> None:
        self.session.close()


def _failed_before_sending(exc: requests.exceptions.RequestException) -> bool:
    text = repr(exc)
    return "NewConnectionError" in text or "ConnectionRefused" in text or "NameResolution" in text
