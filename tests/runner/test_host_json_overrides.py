"""App settings `AzureFunctionsJobHost__...` override host.json, as the host applies them
(https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from emulators.runner.errors import RunnerConfigError
from emulators.runner.host_config import HostConfig
from tests.runner.apps import queue_app
from tests.runner.conftest import HOST_JSON, unique_queue


def test_overrides_win_over_host_json_in_any_case_and_as_text():
    host_json: dict[str, Any] = {"version": "2.0", "extensions": {"queues": {"maxDequeueCount": 5, "batchSize": 16}}}
    config = HostConfig.load(
        host_json,
        app_settings={
            "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2",
            "azurefunctionsjobhost__Extensions__Queues__visibilitytimeout": "00:00:07",
            "AzureFunctionsJobHost__functionTimeout": "00:02:00",
            "UNRELATED": "x",
        },
    )
    assert config.queues.max_dequeue_count == 2
    assert config.queues.visibility_timeout == timedelta(seconds=7)
    assert config.queues.batch_size == 16  # untouched
    assert config.function_timeout == timedelta(minutes=2)
    assert host_json["extensions"]["queues"]["maxDequeueCount"] == 5  # the caller's dict is not changed


def test_an_override_is_validated_like_host_json():
    with pytest.raises(RunnerConfigError, match="maxDequeueCount must be a whole number"):
        HostConfig.load(
            {"version": "2.0"}, app_settings={"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "x"}
        )


@pytest.mark.azurite
def test_the_runner_applies_overrides_from_its_app_settings(make_host, queues):
    name = unique_queue()
    source = queues(name)
    tag = uuid.uuid4().hex
    source.send_json({"tag": tag, "action": "fail"})
    settings = {
        "RUNNER_TEST_QUEUE": name,
        "RUNNER_TEST_OUTPUT_QUEUE": f"{name}-out",
        "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2",  # tests/runner/host.json says 3
    }
    host = make_host(settings=settings, host_json=HOST_JSON)
    host.run_until_idle(idle_seconds=0.3, timeout=20)

    assert [call["message"].dequeue_count for call in queue_app.calls_for(tag)] == [1, 2]
    assert host.stats["handle"].poisoned == 1
