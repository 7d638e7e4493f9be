"""Pure parts of the runner: NCRONTAB evaluation, TimeSpans, host.json options, polling back-off, settings."""

from __future__ import annotations

import itertools
import os
import random
from datetime import UTC, datetime, time, timedelta

import pytest

from emulators.runner.app_settings import (
    AppliedEnvironment,
    LocalSettings,
    connection_string,
    parse_overrides,
    resolve_expressions,
)
from emulators.runner.backoff import RandomizedExponentialBackoff
from emulators.runner.errors import RunnerConfigError
from emulators.runner.host_config import HostConfig, QueuesOptions
from emulators.runner.ncrontab import InvalidSchedule, NcrontabSchedule
from emulators.runner.timespan import parse_timespan

BASE = datetime(2024, 1, 1, 0, 3, 7, 500_000, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 */5 * * * *", datetime(2024, 1, 1, 0, 5, tzinfo=UTC)),
        ("*/10 * * * * *", datetime(2024, 1, 1, 0, 3, 10, tzinfo=UTC)),
        ("0 30 9 * * 1-5", datetime(2024, 1, 1, 9, 30, tzinfo=UTC)),
        ("0 30 9 * * Sat", datetime(2024, 1, 6, 9, 30, tzinfo=UTC)),
        # NCrontab ANDs day-of-month and day-of-week: the next Friday the 13th, not the next Friday
        ("0 0 0 13 * Fri", datetime(2024, 9, 13, tzinfo=UTC)),
        ("0 0 12 * * T", datetime(2024, 1, 2, 12, tzinfo=UTC)),  # names match by prefix: T is Tuesday
        ("0 0 0 1 Feb-Mar *", datetime(2024, 2, 1, tzinfo=UTC)),
        ("10/20 * * * * *", datetime(2024, 1, 1, 0, 3, 10, tzinfo=UTC)),  # a/n: from a to the end every n
        ("0 0 0 29 2 *", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_ncrontab_next_occurrence(expression, expected):
    assert NcrontabSchedule(expression).next_after(BASE) == expected


def test_ncrontab_occurrences_are_strictly_after_the_base_time():
    on_the_dot = datetime(2024, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert NcrontabSchedule("*/5 * * * * *").next_after(on_the_dot) == datetime(2024, 1, 1, 0, 0, 10, tzinfo=UTC)


def test_ncrontab_schedule_that_never_fires():
    assert NcrontabSchedule("0 0 0 30 2 *").next_after(BASE) is None


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 */5 * * *", "must have 6 fields"),
        ("0 0 0 * * 7", "out of range 0-6"),
        ("0 0 0 ? * *", "not a valid day"),
        ("0 0 0 L * *", "not a day"),
        ("0 0 0 * * Funday", "not a day-of-week"),
        ("0 0 0 5-2 * *", "runs backwards"),
        ("*/0 * * * * *", "at least 1"),
        ("00:05:00", "must have 6 fields"),
    ],
)
def test_ncrontab_rejects_what_the_host_rejects(expression, problem):
    with pytest.raises(InvalidSchedule, match=problem):
        NcrontabSchedule(expression)


def test_ncrontab_occurrences_follow_one_another_and_end_with_the_schedule():
    first_three = itertools.islice(NcrontabSchedule("*/10 * * * * *").occurrences(BASE), 3)
    assert [moment.time() for moment in first_three] == [time(0, 3, 10), time(0, 3, 20), time(0, 3, 30)]
    assert list(NcrontabSchedule("0 0 0 30 2 *").occurrences(BASE)) == []


def test_occurrences_within_a_minute_decides_the_monitor_default():
    assert NcrontabSchedule("*/10 * * * * *").occurrences_within(BASE, timedelta(minutes=1)) == 6
    assert NcrontabSchedule("0 */5 * * * *").occurrences_within(BASE, timedelta(minutes=1)) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("00:00:00.200", timedelta(milliseconds=200)),
        ("1.02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("00:05", timedelta(minutes=5)),
        ("00:00:00.0000001", timedelta(microseconds=0.1)),
    ],
)
def test_timespan_parsing(text, expected):
    assert parse_timespan(text, what="x") == expected


@pytest.mark.parametrize("text", ["5", "2000", "00:60:00", "abc", ""])
def test_timespan_rejects_non_timespans(text):
    with pytest.raises(ValueError, match="x:"):
        parse_timespan(text, what="x")


def test_queue_options_defaults_follow_the_extension():
    options = QueuesOptions.from_section({}, processor_count=2)
    assert options.batch_size == 16
    assert options.new_batch_threshold == 16  # batchSize/2 x processors
    assert options.max_polling_interval == timedelta(seconds=2)  # the Development-environment default
    assert options.visibility_timeout == timedelta(0)
    assert options.max_dequeue_count == 5
    assert options.message_encoding == "base64"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"batchSize": 33}, "batchSize must be 1..32"),
        ({"batchSize": 0}, "batchSize must be 1..32"),
        ({"maxPollingInterval": "00:00:00.050"}, "not be less than 00:00:00.100"),
        ({"maxDequeueCount": 0}, "maxDequeueCount"),
        ({"messageEncoding": "utf8"}, "'base64' or 'none'"),
        ({"maxPollingInterval": 2000}, "not a TimeSpan"),
        ({"batchsize": 4}, "unknown key"),
    ],
)
def test_queue_options_are_validated(section, problem):
    with pytest.raises(RunnerConfigError, match=problem):
        QueuesOptions.from_section(section)


def test_host_json_version_and_function_timeout():
    assert HostConfig.load({"version": "2.0"}).function_timeout == timedelta(minutes=30)
    assert HostConfig.load({"version": "2.0", "functionTimeout": "-1"}).function_timeout is None
    with pytest.raises(RunnerConfigError, match=r'"version" must be "2\.0"'):
        HostConfig.load({"version": "1.0"})


def test_polling_back_off_grows_randomized_to_the_maximum_and_resets():
    backoff = RandomizedExponentialBackoff(timedelta(milliseconds=100), timedelta(seconds=1), random.Random(7))
    assert backoff.next_delay(succeeded=True) == timedelta(milliseconds=100)
    delays = [backoff.next_delay(succeeded=False).total_seconds() for _ in range(6)]
    assert 0.18 <= delays[0] <= 0.22  # min + [0.8, 1.2) x min
    assert 0.26 <= delays[1] <= 0.34  # min + [0.8, 1.2) x 2 x min
    assert 0.42 <= delays[2] <= 0.58  # min + [0.8, 1.2) x 4 x min
    assert delays == sorted(delays)
    assert delays[-1] == 1.0  # capped, and stays there
    assert backoff.next_delay(succeeded=True) == timedelta(milliseconds=100)


def test_settings_file_skips_variables_already_set_overrides_win_and_restore(monkeypatch):
    monkeypatch.setenv("RUNNER_T_EXISTING", "from-environment")
    monkeypatch.delenv("RUNNER_T_NEW", raising=False)
    monkeypatch.delenv("RUNNER_T_OVERRIDDEN", raising=False)
    local = LocalSettings(values={"RUNNER_T_EXISTING": "file", "RUNNER_T_NEW": "file", "RUNNER_T_OVERRIDDEN": "file"})
    environment = AppliedEnvironment()
    environment.apply(local, {"RUNNER_T_OVERRIDDEN": "override", "RUNNER_T_EXISTING": "override-too"})
    assert os.environ["RUNNER_T_NEW"] == "file"
    assert os.environ["RUNNER_T_OVERRIDDEN"] == "override"
    assert os.environ["RUNNER_T_EXISTING"] == "override-too"
    environment.restore()
    assert "RUNNER_T_NEW" not in os.environ
    assert "RUNNER_T_OVERRIDDEN" not in os.environ
    assert os.environ["RUNNER_T_EXISTING"] == "from-environment"


def test_file_values_do_not_replace_the_environment(monkeypatch):
    monkeypatch.setenv("RUNNER_T_EXISTING", "from-environment")
    environment = AppliedEnvironment()
    environment.apply(LocalSettings(values={"RUNNER_T_EXISTING": "file"}), {})
    assert os.environ["RUNNER_T_EXISTING"] == "from-environment"
    environment.restore()


def test_command_line_setting_pairs_split_at_the_first_equals_sign_and_errors_hide_the_value():
    assert parse_overrides(["A=1", "CONN=Key=k;Name=x", "EMPTY="]) == {"A": "1", "CONN": "Key=k;Name=x", "EMPTY": ""}
    for bad in ("NO_EQUALS_SIGN", "=s3cr3t"):
        with pytest.raises(RunnerConfigError, match="--setting expects NAME=VALUE") as refused:
            parse_overrides([bad])
        assert "s3cr3t" not in str(refused.value)


def test_binding_expressions_resolve_from_settings():
    env = {"QUEUE": "orders", "ENV": "prod"}
    assert resolve_expressions("%QUEUE%-%ENV%", where="w", env=env) == "orders-prod"
    assert resolve_expressions("%queue%", where="w", env=env) == "orders"  # .NET configuration: any case
    with pytest.raises(RunnerConfigError, match="'%MISSING%' does not resolve to a value"):
        resolve_expressions("%MISSING%", where="w", env=env)


def test_connection_lookup_and_identity_connections_are_refused(monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    assert connection_string("", where="w") == "UseDevelopmentStorage=true"
    monkeypatch.delenv("RUNNER_T_CONN", raising=False)
    monkeypatch.setenv("RUNNER_T_CONN__queueServiceUri", "https://account.queue.core.windows.net")
    with pytest.raises(RunnerConfigError, match=r"identity-based \(RUNNER_T_CONN__queueServiceUri\)"):
        connection_string("RUNNER_T_CONN", where="w")
    monkeypatch.delenv("RUNNER_T_CONN__queueServiceUri")
    with pytest.raises(RunnerConfigError, match="AzureWebJobsRUNNER_T_CONN or RUNNER_T_CONN"):
        connection_string("RUNNER_T_CONN", where="w")
    monkeypatch.setenv("RUNNER_T_CONN", "DefaultEndpointsProtocol=http;AccountName=secretive;AccountKey=c2VjcmV0")
    assert connection_string("RUNNER_T_CONN", where="w").startswith("DefaultEndpointsProtocol")
