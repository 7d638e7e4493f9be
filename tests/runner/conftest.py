"""Fixtures for the local runner's tests: a host factory that always stops, fresh queue names, raw queue access.

Timings are compressed by tests/runner/host.json (polling at most every 200 ms, failed messages retried at once,
3 attempts before poison) so each test takes about a second against the session's Azurite.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from emulators.azurite import Azurite
from emulators.runner import LocalFunctionsHost

RUNNER_ROOT = Path(__file__).resolve().parent
HOST_JSON = RUNNER_ROOT / "host.json"
QUEUE_APP = "tests.runner.apps.queue_app:app"
TIMER_APP = "tests.runner.apps.timer_app:app"


def unique_queue(prefix: str = "rt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class RawQueue:
    """A queue seen from outside the runner: plain text in and out, encoding done by hand."""

    def __init__(self, connection_string: str, name: str) -> None:
        self.name = name
        self.client = QueueClient.from_connection_string(connection_string, name)

    def send_json(self, payload: Any, encoding: str = "base64") -> str:
        text = json.dumps(payload, ensure_ascii=False)
        content = base64.b64encode(text.encode("utf-8")).decode() if encoding == "base64" else text
        return self.send_raw(content)

    def send_raw(self, content: str) -> str:
        if not self.exists():
            self.client.create_queue()
        return str(self.client.send_message(content).id)

    def exists(self) -> bool:
        try:
            self.client.get_queue_properties()
        except Exception:
            return False
        return True

    def count(self) -> int:
        """Messages in the queue, invisible ones included."""
        if not self.exists():
            return 0
        return int(self.client.get_queue_properties().approximate_message_count or 0)

    def peek(self) -> list[Any]:
        return list(self.client.peek_messages(max_messages=32)) if self.exists() else []

    def decoded(self, encoding: str = "base64") -> list[str]:
        return [base64.b64decode(m.content).decode("utf-8") if encoding == "base64" else m.content for m in self.peek()]


@pytest.fixture
def queues(azurite: Azurite) -> Callable[[str], RawQueue]:
    def make(name: str) -> RawQueue:
        return RawQueue(azurite.connection_string, name)

    return make


@pytest.fixture
def make_host(azurite: Azurite) -> Iterator[Callable[..., LocalFunctionsHost]]:
    """`make_host(app=..., settings={...}, host_json=...)` builds and starts a host; teardown stops it."""
    started: list[LocalFunctionsHost] = []

    def make(
        app: str = QUEUE_APP,
        settings: dict[str, str] | None = None,
        host_json: Path | dict[str, Any] = HOST_JSON,
        **options: Any,
    ) -> LocalFunctionsHost:
        overrides = {"RUNNER_STORAGE": azurite.connection_string, **(settings or {})}
        host = LocalFunctionsHost(
            app=app, root=RUNNER_ROOT, settings_overrides=overrides, host_json=host_json, **options
        )
        started.append(host)
        return host.start()

    yield make
    for host in started:
        host.stop(grace=1.0)
