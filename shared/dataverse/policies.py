"""The policies of the Dataverse pipeline (see pipeline.py for their order). One concern each."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from shared.dataverse.concurrency import AdaptiveConcurrency
from shared.dataverse.errors import DataverseError
from shared.dataverse.pipeline import HttpRequest, HttpResponse, Send
from shared.dataverse.retry import RetryBudget, RetryOptions, parse_retry_after, retry_delay

log = logging.getLogger("shared.dataverse")

TokenProvider = Callable[[bool], str]
"""Returns a bearer token for the environment; `True` asks for a fresh one (after a 401). May raise."""


class EnvironmentUnavailable(Exception):
    """The environment cannot be called at all (no token: Entra ID or Key Vault trouble). Safe to log."""


WEB_API_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


class HeadersPolicy:
    """Headers every Web API request carries (compose-http-requests-handle-errors: OData-MaxVersion/OData-Version
    4.0, Accept application/json). The optional parameters of writes (bypass, impersonation) are set per request
    by the write engine (writes.py), since they apply to writes only."""

    def send(self, request: HttpRequest, next_send: Send) -> HttpResponse:
        for name, value in WEB_API_HEADERS.items():
            request.headers.setdefault(name, value)
        if request.method == "GET":
            request.headers.setdefault("If-None-Match", "null")  # never a cached answer (same doc)
        return next_send(request)


class RetryPolicy:
    """Retries throttled and transient failures within the request's deadline (decisions in retry.py)."""

    def __init__(
        self,
        options: RetryOptions,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._sleep = sleep
        self._clock = clock

    def send(self, request: HttpRequest, next_send: Send) -> HttpResponse:
        budget, attempts, maybe_delivered = RetryBudget(), 0, False
        while True:
            response = next_send(request)
            attempts += 1
            error = response.error
            if response.ok or error is None:
                break
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = retry_delay(error, retry_after, budget, self._options, self._rng)
            if delay is None:
                break
            if self._clock() + delay >= request.deadline:
                response.error = dataclasses.replace(
                    error, message=f"{error.message} (a retry in {delay:.1f}s would pass the call's deadline)"
                )
                break
            maybe_delivered = maybe_delivered or (response.status is None and response.maybe_delivered_before)
            self._sleep(delay)
        response.attempts = attempts
        response.maybe_delivered_before = maybe_delivered
        return response


class AuthPolicy:
    """Bearer token from the credential's cache; on 401, one fresh token and one resend."""

    def __init__(self, token_provider: TokenProvider) -> None:
        self._token_provider = token_provider

    def send(self, request: HttpRequest, next_send: Send) -> HttpResponse:
        request.headers["Authorization"] = f"Bearer {fetch_token(self._token_provider)}"
        response = next_send(request)
        if response.status == 401:
            log.info("Dataverse answered 401 to %s; refreshing the token once", request.kind or request.method)
            request.headers["Authorization"] = f"Bearer {fetch_token(self._token_provider, fresh=True)}"
            response = next_send(request)
        return response


def fetch_token(token_provider: TokenProvider, *, fresh: bool = False) -> str:
    """The provider's token; any failure (TokenUnavailable and the like, whose messages carry no secrets) means
    the environment cannot be called: EnvironmentUnavailable."""
    try:
        return token_provider(fresh)
    except Exception as exc:
        raise EnvironmentUnavailable(str(exc) or type(exc).__name__) from None


class ConcurrencyPolicy:
    """Holds a slot of the adaptive limiter for the duration of one attempt and feeds it the outcome."""

    def __init__(self, limiter: AdaptiveConcurrency) -> None:
        self._limiter = limiter

    def send(self, request: HttpRequest, next_send: Send) -> HttpResponse:
        if not self._limiter.acquire(request.deadline):
            return HttpResponse.failed(
                DataverseError(None, None, "time budget of the call spent waiting for a request slot")
            )
        try:
            response = next_send(request)
        finally:
            self._limiter.release()
        hint = response.headers.get("x-ms-dop-hint")
        if hint and hint.isdecimal():
            self._limiter.on_dop_hint(int(hint))
        if response.status == 429:
            self._limiter.on_throttle(parse_retry_after(response.headers.get("Retry-After")))
        elif response.ok:
            self._limiter.on_success()
        return response


class RequestStats:
    """Counters for measurements and logs: attempts per kind and status, throttling per limit kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def record(self, kind: str, response: HttpResponse) -> None:
        with self._lock:
            self.attempts[kind] += 1
            self.statuses[str(response.status or "no response")] += 1
            if response.error is not None and response.error.throttle_kind:
                self.throttled[response.error.throttle_kind] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "attempts": dict(self.attempts),
                "statuses": dict(self.statuses),
                "throttled": dict(self.throttled),
            }


class LoggingPolicy:
    """One structured log line per attempt: what, status, duration, Dataverse's request id. No URLs (key values
    are customer data), no headers (the token), no bodies."""

    def __init__(self, environment: str, stats: RequestStats) -> None:
        self._environment = environment
        self._stats = stats

    def send(self, request: HttpRequest, next_send: Send) -> HttpResponse:
        started = time.perf_counter()
        response = next_send(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self._stats.record(request.kind, response)
        error = response.error
        level = logging.DEBUG if error is None or not error.is_transient else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "dataverse %s %s -> %s in %.0f ms%s",
                self._environment,
                request.kind or request.method,
                response.status or (error.message if error else "?"),
                elapsed_ms,
                f" ({error.throttle_kind} limit, Retry-After {response.headers.get('Retry-After')})"
                if error and error.throttle_kind
                else "",
                extra={
                    "event": "dataverse_request",
                    "environment": self._environment,
                    "kind": request.kind,
                    "status": response.status,
                    "duration_ms": round(elapsed_ms, 1),
                    "request_id": response.request_id,
                    "error_code": error.code if error else None,
                },
            )
        return response
