"""The runner drives queue triggers as the host does, against Azurite (tests/runner/host.json: batchSize 4,
newBatchThreshold 2, maxPollingInterval 200 ms, visibilityTimeout 0, maxDequeueCount 3, base64)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from azure.functions.queue import QueueMessage

from tests.runner.apps import queue_app
from tests.runner.conftest import HOST_JSON, unique_queue, wait_until

pytestmark = pytest.mark.azurite


def _settings(queue: str, output: str | None = None) -> dict[str, str]:
    return {"RUNNER_TEST_QUEUE": queue, "RUNNER_TEST_OUTPUT_QUEUE": output or f"{queue}-out"}


def _host_json(**queues: object) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(HOST_JSON.read_text())
    data["extensions"]["queues"].update(queues)
    return data


def test_a_succeeding_message_is_invoked_once_with_real_metadata_and_deleted(make_host, queues, unique_name):
    source = queues(unique_name)
    tag = uuid.uuid4().hex
    message_id = source.send_json({"tag": tag})
    host = make_host(settings=_settings(source.name))
    host.run_until_idle(idle_seconds=0.3, timeout=20)

    calls = queue_app.calls_for(tag)
    assert len(calls) == 1
    message = calls[0]["message"]
    assert type(message) is QueueMessage  # azure.functions.queue.QueueMessage, metadata filled in
    assert message.id == message_id
    assert message.dequeue_count == 1
    assert message.pop_receipt
    assert message.insertion_time is not None
    assert message.insertion_time.tzinfo is not None
    assert message.expiration_time > message.insertion_time
    assert message.time_next_visible > message.insertion_time  # invisible while the function runs
    assert calls[0]["function_name"] == "handle"
    assert calls[0]["invocation_id"]
    assert source.count() == 0
    stats = host.stats["handle"]
    assert (stats.invocations, stats.successes, stats.failures, stats.poisoned) == (1, 1, 0, 0)


def test_a_failing_message_is_retried_then_moved_to_poison_with_its_body_intact(make_host, queues, unique_name):
    source = queues(unique_name)
    poison = queues(f"{unique_name}-poison")
    tag = uuid.uuid4().hex
    payload = {"tag": tag, "action": "fail", "note": "Ünïcödé ✓"}
    original_content = base64.b64encode(json.dumps(payload, ensure_ascii=False).encode()).decode()
    original_id = source.send_raw(original_content)
    host = make_host(settings=_settings(source.name))
    host.run_until_idle(idle_seconds=0.3, timeout=20)

    calls = queue_app.calls_for(tag)
    assert [call["message"].dequeue_count for call in calls] == [1, 2, 3]  # maxDequeueCount 3
    assert {call["message"].id for call in calls} == {original_id}
    assert source.count() == 0  # the original is gone
    poisoned = poison.peek()
    assert len(poisoned) == 1
    assert poisoned[0].content == original_content  # same body, same encoding
    assert poisoned[0].id != original_id
    stats = host.stats["handle"]
    assert (stats.invocations, stats.failures, stats.poisoned, stats.successes) == (3, 3, 1, 0)


def test_a_failed_message_waits_visibility_timeout_before_its_retry(make_host, queues, unique_name):
    source = queues(unique_name)
    tag = uuid.uuid4().hex
    source.send_json({"tag": tag, "action": "fail"})
    host_json = _host_json(visibilityTimeout="00:00:01", maxDequeueCount=2)
    make_host(settings=_settings(source.name), host_json=host_json).run_until_idle(idle_seconds=0.3, timeout=20)

    first, second = queue_app.calls_for(tag)
    assert second["message"].dequeue_count == 2
    assert second["at"] - first["at"] >= 0.9  # released with a 1 s visibility timeout, not at once


def test_a_poison_queue_has_no_poison_queue_of_its_own(make_host, queues, unique_name):
    source = queues(f"{unique_name}-poison")
    tag = uuid.uuid4().hex
    source.send_json({"tag": tag, "action": "fail"})
    host = make_host(settings=_settings(source.name))
    wait_until(lambda: queue_app.calls_for(tag))
    time.sleep(0.6)  # several polling rounds

    assert len(queue_app.calls_for(tag)) == 1  # left invisible after the failure: no fast retry loop
    assert source.count() == 1
    assert source.peek() == []
    assert not queues(f"{source.name}-poison").exists()
    assert host.stats["handle"].poisoned == 0


def test_a_message_over_the_max_dequeue_count_is_poisoned_without_running(make_host, queues, unique_name):
    source = queues(unique_name)
    poison = queues(f"{unique_name}-poison")
    tag = uuid.uuid4().hex
    source.send_json({"tag": tag})
    for _ in range(3):  # three earlier deliveries, e.g. a host that crashed mid-invocation three times
        received = next(iter(source.client.receive_messages(visibility_timeout=30)))
        source.client.update_message(received, visibility_timeout=0)
    host = make_host(settings=_settings(source.name))  # maxDequeueCount 3: the next delivery is the 4th
    host.run_until_idle(idle_seconds=0.3, timeout=20)

    assert queue_app.calls_for(tag) == []
    assert [json.loads(text)["tag"] for text in poison.decoded()] == [tag]
    assert source.count() == 0
    assert host.stats["handle"].poisoned == 1
    assert host.stats["handle"].invocations == 0


def test_a_message_that_is_not_base64_is_poisoned_undecoded(make_host, queues, unique_name):
    source = queues(unique_name)
    poison = queues(f"{unique_name}-poison")
    source.send_raw('{"plain": "text, not base64"}')
    host = make_host(settings=_settings(source.name))
    host.run_until_idle(idle_seconds=0.3, timeout=20)

    assert [m.content for m in poison.peek()] == ['{"plain": "text, not base64"}']
    assert source.count() == 0
    assert host.stats["handle"].invocations == 0


def test_base64_round_trips_non_ascii_json_through_trigger_and_output(make_host, queues, unique_name):
    source, output = queues(unique_name), queues(f"{unique_name}-out")
    tag = uuid.uuid4().hex
    forward = json.dumps({"name": "Zoë Ångström / 東京 ✓", "emoji": "🚀"}, ensure_ascii=False)
    source.send_json({"tag": tag, "name": "Zoë Ångström / 東京 ✓", "forward": forward})
    make_host(settings=_settings(source.name, output.name)).run_until_idle(idle_seconds=0.3, timeout=20)

    (call,) = queue_app.calls_for(tag)
    assert call["body"]["name"] == "Zoë Ångström / 東京 ✓"
    assert call["message"].get_body().decode("utf-8") == json.dumps(call["body"], ensure_ascii=False)
    (sent,) = output.peek()
    assert base64.b64decode(sent.content).decode("utf-8") == forward  # base64 of UTF-8, like the host


def test_none_encoding_reads_and_writes_plain_text(make_host, queues, unique_name):
    source, output = queues(unique_name), queues(f"{unique_name}-out")
    tag = uuid.uuid4().hex
    source.send_json({"tag": tag, "city": "Zürich", "forward": "plain ✓"}, encoding="none")
    host = make_host(settings=_settings(source.name, output.name), host_json=_host_json(messageEncoding="none"))
    host.run_until_idle(idle_seconds=0.3, timeout=20)

    (call,) = queue_app.calls_for(tag)
    assert call["body"]["city"] == "Zürich"
    assert [m.content for m in output.peek()] == ["plain ✓"]


def test_queue_output_is_sent_only_when_the_function_succeeds(make_host, queues, unique_name):
    source, output = queues(unique_name), queues(f"{unique_name}-out")
    good, bad = uuid.uuid4().hex, uuid.uuid4().hex
    source.send_json({"tag": bad, "forward": "from the failing one", "action": "fail"})
    source.send_json({"tag": good, "forward": "from the good one"})
    make_host(settings=_settings(source.name, output.name)).run_until_idle(idle_seconds=0.3, timeout=20)

    assert len(queue_app.calls_for(bad)) == 3  # it did set the output, three times, and failed each time
    assert output.decoded() == ["from the good one"]


def test_a_list_set_on_an_output_sends_one_message_per_item(make_host, queues, unique_name):
    source, output = queues(unique_name), queues(f"{unique_name}-out")
    source.send_json({"tag": uuid.uuid4().hex, "forward": ["first", "second"]})
    make_host(settings=_settings(source.name, output.name)).run_until_idle(idle_seconds=0.3, timeout=20)
    assert sorted(output.decoded()) == ["first", "second"]


def test_a_str_trigger_gets_the_text_and_a_return_value_is_the_output(make_host, queues, unique_name):
    source, output = queues(unique_name), queues(f"{unique_name}-out")
    source.send_raw(base64.b64encode("grüße ✓".encode()).decode())
    host = make_host(app="tests.runner.apps.plain_app:app", settings=_settings(source.name, output.name))
    host.run_until_idle(idle_seconds=0.3, timeout=20)
    assert output.decoded() == ["GRÜSSE ✓"]
    assert host.stats["shout"].successes == 1


def test_bindings_come_from_the_app_with_settings_resolved(make_host, queues, unique_name):
    output = f"{unique_name}-out"
    host = make_host(settings=_settings(unique_name.upper(), output))  # the host lower-cases queue names
    (function,) = host.functions
    assert (function.name, function.trigger) == ("handle", "queueTrigger")
    assert function.source == unique_name
    assert function.outputs == (output,)


def test_batch_size_one_and_threshold_zero_process_one_message_at_a_time(make_host, queues, unique_name):
    source = queues(unique_name)
    tags = [uuid.uuid4().hex for _ in range(3)]
    for tag in tags:
        source.send_json({"tag": tag, "action": "sleep", "seconds": 0.15})
    queue_app.MAX_CONCURRENT = 0
    host = make_host(settings=_settings(source.name), host_json=_host_json(batchSize=1, newBatchThreshold=0))
    host.run_until_idle(idle_seconds=0.3, timeout=20)

    assert all(len(queue_app.calls_for(tag)) == 1 for tag in tags)
    assert queue_app.MAX_CONCURRENT == 1


def test_a_long_invocation_keeps_its_message_invisible_by_renewing_it(make_host, queues, unique_name):
    source = queues(unique_name)
    tag = uuid.uuid4().hex
    source.send_json({"tag": tag, "action": "sleep", "seconds": 3})
    host = make_host(settings=_settings(source.name), message_lease=timedelta(seconds=2))
    host.run_until_idle(idle_seconds=0.3, timeout=20)

    # Without renewal the 2 s lease would end mid-run and the message would be delivered a second time.
    assert [call["message"].dequeue_count for call in queue_app.calls_for(tag)] == [1]
    assert source.count() == 0
    assert host.stats["handle"].successes == 1


def test_stop_leaves_an_in_flight_message_undeleted_and_visible_again(make_host, queues, unique_name):
    source = queues(unique_name)
    tag = uuid.uuid4().hex
    message_id = source.send_json({"tag": tag, "action": "block"})
    queue_app.RELEASE.clear()
    host = make_host(settings=_settings(source.name))
    wait_until(lambda: queue_app.calls_for(tag))

    started = time.monotonic()
    host.stop(grace=0.3)
    assert time.monotonic() - started < 5
    (visible,) = source.peek()  # released at shutdown: visible now, not after its 10-minute lease
    assert (visible.id, visible.dequeue_count) == (message_id, 1)
    assert host.stats["handle"].abandoned == 1

    queue_app.RELEASE.set()  # the abandoned invocation finishes late: it must not delete the message
    time.sleep(0.3)
    assert [m.id for m in source.peek()] == [message_id]
    source.client.clear_messages()


@pytest.fixture
def unique_name() -> str:
    return unique_queue("rq")
