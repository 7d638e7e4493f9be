"""A trigger annotated `str` (the worker's generic binding: the message text itself) and a `$return` output."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="text", queue_name="%RUNNER_TEST_QUEUE%", connection="RUNNER_STORAGE")
@app.queue_output(arg_name="$return", queue_name="%RUNNER_TEST_OUTPUT_QUEUE%", connection="RUNNER_STORAGE")
def shout(text: str) -> str:
    return text.upper()
