"""function_app.py as the Functions host and the local runner see it: four functions, their triggers, queues,
connection and schedules (resolved from app settings), and bodies that only hand over to the composition root.

The host learns the bindings from the function.json the Python worker generates from the app object
(`get_function_json()`); the runner reads the same, then resolves `%NAME%` and the connection as the host does.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

import function_app
from emulators.cloud import SAMPLE_SETTINGS
from emulators.runner.app_settings import AppliedEnvironment, LocalSettings
from emulators.runner.bindings import FunctionSpec, QueueTriggerSpec, TimerTriggerSpec, read_functions
from emulators.runner.errors import RunnerConfigError
from shared import bootstrap
from shared.config.settings import SCHEDULE_SETTINGS
from shared.queues.names import RECORDS_POISON_QUEUE, RECORDS_QUEUE
from shared.sync import RetryLater
from shared.sync.ports import IncomingMessage

STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1"
)


@pytest.fixture
def app_settings() -> Iterator[dict[str, str]]:
    """The sample settings in the environment, as the runner (and Core Tools) put them there; restored after."""
    applied = AppliedEnvironment()
    local = LocalSettings.load(SAMPLE_SETTINGS)
    overrides = {"SYNC_STORAGE": STORAGE}
    applied.apply(local, overrides)
    try:
        yield {**local.values, **overrides}
    finally:
        applied.restore()


def specs(settings: dict[str, str]) -> dict[str, FunctionSpec]:
    found, skipped = read_functions(function_app.app, LocalSettings(values=settings))
    assert skipped == []
    return {spec.name: spec for spec in found}


def test_the_host_sees_four_functions_with_these_bindings(app_settings):
    bindings = {name: spec.function_json["bindings"] for name, spec in specs(app_settings).items()}
    queue = {"direction": "IN", "type": "queueTrigger", "name": "msg", "connection": "SYNC_STORAGE"}
    timer = {"direction": "IN", "type": "timerTrigger", "name": "timer", "runOnStartup": False}
    assert bindings == {
        "sync_records": [{**queue, "queueName": "dvsync-records"}],
        # The host names a queue's poison queue `<queue>-poison`: triage listens exactly where the host poisons.
        "triage_poison": [{**queue, "queueName": f"{RECORDS_QUEUE}-poison"}],
        # A schedule firing more often than once a minute gets no schedule monitor (useMonitor false); the daily
        # health check keeps it, so a run missed while the app was down is caught up at start.
        "drain_bulk": [{**timer, "schedule": "%BULK_DRAIN_SCHEDULE%", "useMonitor": False}],
        "health_check": [{**timer, "schedule": "%HEALTH_CHECK_SCHEDULE%", "useMonitor": True}],
    }
    schedules = {re.sub("%", "", b["schedule"]) for spec in bindings.values() for b in spec if "schedule" in b}
    assert schedules == set(SCHEDULE_SETTINGS)  # the settings the app documents and infra/ deploys


def test_the_runner_resolves_queues_connection_and_schedules_from_app_settings(app_settings):
    found = specs(app_settings)
    records, poison = found["sync_records"].trigger, found["triage_poison"].trigger
    assert isinstance(records, QueueTriggerSpec)
    assert isinstance(poison, QueueTriggerSpec)
    assert (records.queue_name, poison.queue_name) == (RECORDS_QUEUE, RECORDS_POISON_QUEUE)
    assert records.connection_name == poison.connection_name == "SYNC_STORAGE"
    assert records.connection_string == poison.connection_string == STORAGE
    drain, health = found["drain_bulk"].trigger, found["health_check"].trigger
    assert isinstance(drain, TimerTriggerSpec)
    assert isinstance(health, TimerTriggerSpec)
    assert (drain.schedule.expression, health.schedule.expression) == (
        app_settings["BULK_DRAIN_SCHEDULE"],
        app_settings["HEALTH_CHECK_SCHEDULE"],
    )
    after = datetime(2025, 3, 1, 12, 0, 3, tzinfo=UTC)
    assert drain.schedule.next_after(after) == datetime(2025, 3, 1, 12, 0, 10, tzinfo=UTC)  # */10 seconds
    assert health.schedule.next_after(after) == datetime(2025, 3, 2, 6, 0, 0, tzinfo=UTC)  # daily at 06:00 UTC
    assert not any(spec.is_async for spec in found.values())  # requests blocks: thread pool, not the event loop


def test_a_schedule_setting_that_is_missing_stops_indexing(app_settings, monkeypatch):
    monkeypatch.delenv("HEALTH_CHECK_SCHEDULE")
    with pytest.raises(RunnerConfigError, match="'%HEALTH_CHECK_SCHEDULE%' does not resolve"):
        specs({k: v for k, v in app_settings.items() if k != "HEALTH_CHECK_SCHEDULE"})


# --- the bodies hand over to the composition root ------------------------------------------------------------


@dataclass
class Recorder:
    """Stands in for a handler: records what it was given, optionally raises."""

    raises: Exception | None = None
    calls: list[Any] = field(default_factory=list)

    def handle(self, message: IncomingMessage) -> None:
        self.calls.append(message)
        if self.raises is not None:
            raise self.raises

    def run(self) -> None:
        self.calls.append("run")


@dataclass
class FakeHandlers:
    records: Recorder = field(default_factory=Recorder)
    poison: Recorder = field(default_factory=Recorder)
    bulk: Recorder = field(default_factory=Recorder)
    health: Recorder = field(default_factory=Recorder)
    message_encoding: str = "none"


@pytest.fixture
def handlers(monkeypatch) -> FakeHandlers:
    fake = FakeHandlers()
    monkeypatch.setattr(bootstrap, "_built", fake)  # what handlers() returns once built
    return fake


def _trigger_message(text: str, dequeue_count: int = 1) -> QueueMessage:
    # messageEncoding none: the host passes the stored text, which producers base64-encode.
    inserted = datetime(2025, 3, 1, tzinfo=UTC)
    body = base64.b64encode(text.encode())
    return QueueMessage(id="msg-1", body=body, dequeue_count=dequeue_count, insertion_time=inserted)


def test_the_queue_functions_hand_the_decoded_message_to_their_handler(app_settings, handlers):
    found = specs(app_settings)
    found["sync_records"].user_function(msg=_trigger_message('{"table":"account"}', dequeue_count=2))
    found["triage_poison"].user_function(msg=_trigger_message('{"poisoned":true}'))

    [record_message] = handlers.records.calls
    assert (record_message.id, record_message.body, record_message.queue) == (
        "msg-1",
        b'{"table":"account"}',
        RECORDS_QUEUE,
    )
    assert (record_message.dequeue_count, record_message.encoding_error) == (2, None)
    [poison_message] = handlers.poison.calls
    assert (poison_message.body, poison_message.queue) == (b'{"poisoned":true}', RECORDS_POISON_QUEUE)


def test_retry_later_reaches_the_host_so_that_it_retries(app_settings, handlers):
    handlers.records.raises = RetryLater("nothing settled")
    with pytest.raises(RetryLater):
        specs(app_settings)["sync_records"].user_function(msg=_trigger_message("{}"))


def test_the_timer_functions_run_their_handler_once(app_settings, handlers):
    found = specs(app_settings)
    found["drain_bulk"].user_function(timer=TimerRequest(past_due=False))
    found["health_check"].user_function(timer=TimerRequest(past_due=True))
    assert (handlers.bulk.calls, handlers.health.calls) == (["run"], ["run"])
    assert (handlers.records.calls, handlers.poison.calls) == ([], [])
