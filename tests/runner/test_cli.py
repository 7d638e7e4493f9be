"""`python -m emulators.runner` in a child process: runs until idle, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.runner.conftest import HOST_JSON, QUEUE_APP, RUNNER_ROOT, unique_queue, wait_until

pytestmark = pytest.mark.azurite
PROJECT = Path(__file__).resolve().parents[2]


def _runner(azurite, queue: str, *extra: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "emulators.runner", "--app", QUEUE_APP, "--root", str(RUNNER_ROOT),
        "--host-json", str(HOST_JSON), "--setting", f"RUNNER_STORAGE={azurite.connection_string}",
        "--setting", f"RUNNER_TEST_QUEUE={queue}", "--setting", f"RUNNER_TEST_OUTPUT_QUEUE={queue}-out", *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


class _Lines:
    """Collects a child's stderr lines in the background."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stderr is not None
        stream = process.stderr
        threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True).start()

    def has(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))


def test_until_idle_processes_the_queue_and_exits_zero(azurite, queues):
    source = queues(unique_queue("rc"))
    source.send_json({"tag": "cli"})
    process = _runner(azurite, source.name, "--until-idle", "0.3", "--timeout", "30")
    output = _Lines(process)
    assert process.wait(timeout=60) == 0, "".join(output.lines)
    assert source.count() == 0
    assert output.has("Executed 'Functions.handle' (Succeeded")
    assert not output.has(azurite.connection_string.split("AccountKey=")[1][:20])  # the key is never logged


def test_sigterm_stops_gracefully_and_the_running_message_is_delivered_again(azurite, queues):
    source = queues(unique_queue("rc"))
    message_id = source.send_json({"tag": "cli-term", "action": "sleep", "seconds": 30})
    process = _runner(azurite, source.name, "--grace", "0.5")
    output = _Lines(process)
    try:
        wait_until(lambda: output.has("Executing 'Functions.handle'"), timeout=30)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, "".join(output.lines)
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    (message,) = source.peek()  # released at shutdown: visible again right away, not deleted
    assert (message.id, message.dequeue_count) == (message_id, 1)
    assert output.has("Released message")
    source.client.clear_messages()
