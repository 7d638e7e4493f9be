"""A small v2-model app for the runner's timer tests (no storage bindings)."""

from __future__ import annotations

import threading
import time
from typing import Any

import azure.functions as func

app = func.FunctionApp()

CALLS: list[dict[str, Any]] = []
_calls_lock = threading.Lock()
FLAKY_FAILURES_LEFT = 0  # the flaky timer fails this many attempts before succeeding


def calls_of(function: str) -> list[dict[str, Any]]:
    with _calls_lock:
        return [call for call in CALLS if call["function"] == function]


def _record(function: str, timer: func.TimerRequest, context: func.Context | None = None) -> None:
    with _calls_lock:
        CALLS.append(
            {
                "function": function,
                "at": time.time(),
                "timer": timer,
                "retry_count": context.retry_context.retry_count if context else None,
                "max_retry_count": context.retry_context.max_retry_count if context else None,
            }
        )


@app.timer_trigger(arg_name="timer", schedule="%RUNNER_TEST_SCHEDULE%")
def tick(timer: func.TimerRequest) -> None:
    _record("tick", timer)


@app.timer_trigger(arg_name="timer", schedule="0 0 0 * * *")
def daily(timer: func.TimerRequest) -> None:
    _record("daily", timer)


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
@app.retry(strategy="exponential_backoff", max_retry_count="3", minimum_interval="00:00:00.050",
           maximum_interval="00:00:00.200")  # fmt: skip
async def flaky(timer: func.TimerRequest, context: func.Context) -> None:
    global FLAKY_FAILURES_LEFT  # noqa: PLW0603 - test instrumentation
    _record("flaky", timer, context)
    if FLAKY_FAILURES_LEFT > 0:
        FLAKY_FAILURES_LEFT -= 1
        raise RuntimeError("flaky timer fails")
