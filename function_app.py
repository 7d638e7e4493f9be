"""Azure Functions entry point (Python v2 programming model): bindings only; the work happens in shared/.

Queue triggers read the queues of the `SYNC_STORAGE` connection (a connection string locally; identity-based
`SYNC_STORAGE__queueServiceUri`/`__credential`/`__clientId` in Azure). host.json messageEncoding is `none`: the
base64 of each message is undone by `incoming_message`, so a message that is not base64 becomes a dead letter with
its reason instead of being poisoned undecoded by the host (shared/queues/triggers.py). Timer schedules come from
app settings (`%NAME%`), NCRONTAB with six fields, UTC. Sync functions: `requests` blocks, so none of these is `async`.
"""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import handlers
from shared.config.settings import CONNECTION as QUEUE_CONNECTION  # SYNC_STORAGE: the settings read it too
from shared.queues.names import RECORDS_POISON_QUEUE, RECORDS_QUEUE
from shared.queues.triggers import incoming_message

app = func.FunctionApp()


@app.function_name("sync_records")
@app.queue_trigger(arg_name="msg", queue_name=RECORDS_QUEUE, connection=QUEUE_CONNECTION)
def sync_records(msg: func.QueueMessage) -> None:
    """Write a message's records; raises RetryLater when nothing could be settled (the host retries)."""
    app_handlers = handlers()
    app_handlers.records.handle(incoming_message(msg, RECORDS_QUEUE, app_handlers.message_encoding))


@app.function_name("triage_poison")
@app.queue_trigger(arg_name="msg", queue_name=RECORDS_POISON_QUEUE, connection=QUEUE_CONNECTION)
def triage_poison(msg: func.QueueMessage) -> None:
    """Re-queue a poisoned message whose cause was transient (bounded), or dead-letter its records."""
    app_handlers = handlers()
    app_handlers.poison.handle(incoming_message(msg, RECORDS_POISON_QUEUE, app_handlers.message_encoding))


@app.function_name("drain_bulk")
@app.timer_trigger(arg_name="timer", schedule="%BULK_DRAIN_SCHEDULE%", run_on_startup=False, use_monitor=False)
def drain_bulk(timer: func.TimerRequest) -> None:
    """Coalesce many small messages of the bulk queue into full bulk requests."""
    handlers().bulk.run()


@app.function_name("health_check")
@app.timer_trigger(arg_name="timer", schedule="%HEALTH_CHECK_SCHEDULE%", run_on_startup=False, use_monitor=True)
def health_check(timer: func.TimerRequest) -> None:
    """Certificate expiry, token, WhoAmI and queue depths of every environment; logs structured warnings."""
    handlers().health.run()
