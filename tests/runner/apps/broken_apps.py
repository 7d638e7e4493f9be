"""Apps the runner must refuse to load, each for one reason the worker or host would refuse it too."""

from __future__ import annotations

import azure.functions as func

extra_parameter = func.FunctionApp()


@extra_parameter.queue_trigger(arg_name="msg", queue_name="runner-broken", connection="RUNNER_STORAGE")
def takes_extra(msg: func.QueueMessage, extra: str) -> None:
    pass


wrong_annotation = func.FunctionApp()


@wrong_annotation.queue_trigger(arg_name="msg", queue_name="runner-broken", connection="RUNNER_STORAGE")
def wants_timer(msg: func.TimerRequest) -> None:
    pass


bad_schedule = func.FunctionApp()


@bad_schedule.timer_trigger(arg_name="timer", schedule="0 */5 * * *")  # five fields: cron, not NCRONTAB
def five_fields(timer: func.TimerRequest) -> None:
    pass


unsupported_binding = func.FunctionApp()


@unsupported_binding.queue_trigger(arg_name="msg", queue_name="runner-broken", connection="RUNNER_STORAGE")
@unsupported_binding.blob_output(arg_name="blob", path="out/{id}", connection="RUNNER_STORAGE")
def writes_blob(msg: func.QueueMessage, blob: func.Out[str]) -> None:
    pass


http_only = func.FunctionApp()


@http_only.route(route="health")
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


bad_context = func.FunctionApp()


@bad_context.queue_trigger(arg_name="msg", queue_name="runner-broken", connection="RUNNER_STORAGE")
def odd_context(msg: func.QueueMessage, context: str) -> None:
    pass


output_not_out = func.FunctionApp()


@output_not_out.queue_trigger(arg_name="msg", queue_name="runner-broken", connection="RUNNER_STORAGE")
@output_not_out.queue_output(arg_name="out", queue_name="runner-broken-out", connection="RUNNER_STORAGE")
def plain_output(msg: func.QueueMessage, out: str) -> None:
    pass
