"""A small v2-model app for the runner's queue tests. Each message is a JSON object with a `tag` (so tests can
find their own calls) and optional instructions: `action` fail | block | sleep, `forward` (sent to the output)."""

from __future__ import annotations

import threading
import time
from typing import Any

import azure.functions as func

app = func.FunctionApp()

CALLS: list[dict[str, Any]] = []
_calls_lock = threading.Lock()
RELEASE = threading.Event()  # what a "block" message waits for
_running = 0
MAX_CONCURRENT = 0


def calls_for(tag: str) -> list[dict[str, Any]]:
    with _calls_lock:
        return [call for call in CALLS if call["tag"] == tag]


@app.queue_trigger(arg_name="msg", queue_name="%RUNNER_TEST_QUEUE%", connection="RUNNER_STORAGE")
@app.queue_output(arg_name="out", queue_name="%RUNNER_TEST_OUTPUT_QUEUE%", connection="RUNNER_STORAGE")
def handle(msg: func.QueueMessage, out: func.Out[str], context: func.Context) -> None:
    global _running, MAX_CONCURRENT  # noqa: PLW0603 - test instrumentation
    body = msg.get_json()
    with _calls_lock:
        CALLS.append(
            {
                "tag": body.get("tag"),
                "at": time.monotonic(),
                "message": msg,
                "body": body,
                "invocation_id": context.invocation_id,
                "function_name": context.function_name,
            }
        )
        _running += 1
        MAX_CONCURRENT = max(MAX_CONCURRENT, _running)
    try:
        if "forward" in body:
            out.set(body["forward"])
        action = body.get("action")
        if action == "sleep":
            time.sleep(float(body["seconds"]))
        elif action == "block":
            RELEASE.wait(timeout=30)
        if action == "fail":
            raise RuntimeError("told to fail")
    finally:
        with _calls_lock:
            _running -= 1
