"""A queue trigger beside an HTTP function: the runner drives the first and reports the second as skipped."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="%RUNNER_TEST_QUEUE%", connection="RUNNER_STORAGE")
def consume(msg: func.QueueMessage) -> None:
    pass


@app.route(route="health")
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")
