"""The runner fires timer triggers on their NCRONTAB schedule, as the host's TimerListener does."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

from azure.functions.timer import TimerRequest

from emulators.runner.ncrontab import NcrontabSchedule
from tests.runner.apps import timer_app
from tests.runner.conftest import TIMER_APP, wait_until


def test_a_timer_fires_on_its_schedule_with_a_timer_request(make_host):
    already = len(timer_app.calls_of("tick"))
    host = make_host(app=TIMER_APP, settings={"RUNNER_TEST_SCHEDULE": "*/1 * * * * *"})
    wait_until(lambda: len(timer_app.calls_of("tick")) >= already + 2, timeout=5)
    host.stop()

    first, second = timer_app.calls_of("tick")[already : already + 2]
    assert type(first["timer"]) is TimerRequest
    assert first["timer"].past_due is False
    assert first["timer"].schedule_status == {}  # fires more than once a minute: no schedule monitor
    assert 0.5 < second["at"] - first["at"] < 1.5
    for call in (first, second):  # on whole seconds (the schedule's), shortly after the boundary
        assert call["at"] % 1 < 0.5
    assert host.stats["tick"].timer_runs >= 2


def test_run_on_startup_and_exponential_retry_policy(make_host):
    timer_app.FLAKY_FAILURES_LEFT = 2
    already = len(timer_app.calls_of("flaky"))
    host = make_host(app=TIMER_APP)
    wait_until(lambda: len(timer_app.calls_of("flaky")) >= already + 3, timeout=5)
    host.run_until_idle(idle_seconds=0.2, timeout=5)

    attempts = timer_app.calls_of("flaky")[already:]
    assert [a["retry_count"] for a in attempts] == [0, 1, 2]
    assert {a["max_retry_count"] for a in attempts} == {3}
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(attempts)]
    assert all(gap >= 0.045 for gap in gaps)  # minimum_interval 50 ms
    stats = host.stats["flaky"]
    assert (stats.timer_runs, stats.invocations, stats.failures, stats.successes) == (1, 3, 2, 1)


def test_a_missed_occurrence_runs_at_start_with_past_due(make_host, tmp_path):
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    last = midnight - timedelta(days=2)
    status = {
        "Last": last.isoformat(),
        "Next": (midnight - timedelta(days=1)).isoformat(),
        "LastUpdated": last.isoformat(),
    }
    (tmp_path / "timers").mkdir()
    (tmp_path / "timers" / "daily.json").write_text(json.dumps(status))
    already = len(timer_app.calls_of("daily"))
    host = make_host(app=TIMER_APP, state_dir=tmp_path)
    wait_until(lambda: len(timer_app.calls_of("daily")) > already, timeout=5)
    host.run_until_idle(idle_seconds=0.2, timeout=5)

    (call,) = timer_app.calls_of("daily")[already:]
    assert call["timer"].past_due is True
    assert call["timer"].schedule_status["Next"] == status["Next"]
    saved = json.loads((tmp_path / "timers" / "daily.json").read_text())
    assert datetime.fromisoformat(saved["Next"]) == NcrontabSchedule("0 0 0 * * *").next_after(now)


def test_a_timer_without_a_missed_occurrence_does_not_run_at_start(make_host, tmp_path):
    already = len(timer_app.calls_of("daily"))
    host = make_host(app=TIMER_APP, state_dir=tmp_path)
    host.run_until_idle(idle_seconds=0.3, timeout=5)
    assert len(timer_app.calls_of("daily")) == already
    saved = json.loads((tmp_path / "timers" / "daily.json").read_text())  # status recorded for next time
    assert datetime.fromisoformat(saved["Next"]) > datetime.now(UTC)
