"""A timer trigger, driven as the host's TimerListener drives it (Azure/azure-webjobs-sdk-extensions,
src/WebJobs.Extensions/Extensions/Timers/Listener/TimerListener.cs; docs:
https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer).

- Schedules are NCRONTAB in UTC (WEBSITE_TIME_ZONE is not emulated; it is unsupported on Linux Flex anyway).
- At start, a past-due occurrence (found by the schedule monitor) or `runOnStartup` fires once immediately.
- The next occurrence is computed from the time the timer fired, not from when the function finished, so a run
  that outlasts the period is followed by an immediate one; runs of one timer never overlap.
- `IsPastDue` is true only for the start-up run that catches up a missed occurrence. Missed occurrences are found
  by the schedule monitor (ScheduleMonitor.CheckPastDueAsync), which the host keeps in blob storage when
  useMonitor is on (default: on unless the schedule fires more than once a minute). Here the status is kept in
  memory, and persisted as JSON files under `state_dir/timers/` only when the host is given a state directory.
- An `@app.retry` policy is honoured (runtime retry policies apply to timer triggers):
  fixed_delay waits delay_interval between attempts; exponential_backoff uses the randomized exponential
  back-off between minimum_interval and maximum_interval; max_retry_count -1 retries until the host stops.
  https://learn.microsoft.com/azure/azure-functions/functions-bindings-error-pages#retry-policies
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from emulators.runner.backoff import RandomizedExponentialBackoff
from emulators.runner.bindings import FunctionSpec, TimerTriggerSpec
from emulators.runner.execution import HostServices, execute
from emulators.runner.invocation import Outcome, raw_trigger_value, timer_trigger_value

log = logging.getLogger("emulators.runner")
DEFAULT_DATETIME = "0001-01-01T00:00:00"  # how the host serializes an unset DateTime


@dataclass
class ScheduleStatus:
    """ScheduleStatus: the last occurrence, the next one, and when they were computed (UTC)."""

    last: datetime | None
    next: datetime | None
    last_updated: datetime | None

    def as_json(self) -> dict[str, str]:
        def text(moment: datetime | None) -> str:
            return moment.isoformat() if moment else DEFAULT_DATETIME

        return {"Last": text(self.last), "Next": text(self.next), "LastUpdated": text(self.last_updated)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleStatus:
        def moment(key: str) -> datetime | None:
            value = data.get(key)
            if not value or value.startswith("0001-01-01"):
                return None
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

        return cls(moment("Last"), moment("Next"), moment("LastUpdated"))


class FileScheduleMonitor:
    """Schedule status per timer in `<state_dir>/timers/<function>.json` (the host's blob
    `timers/<host id>/<function>/status`)."""

    def __init__(self, state_dir: Path) -> None:
        self._folder = state_dir / "timers"

    def get(self, name: str) -> ScheduleStatus | None:
        try:
            return ScheduleStatus.from_json(json.loads((self._folder / f"{name}.json").read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, AttributeError):
            log.warning("Timer status of '%s' is unreadable; starting afresh", name)
            return None

    def save(self, name: str, status: ScheduleStatus) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        (self._folder / f"{name}.json").write_text(json.dumps(status.as_json()), encoding="utf-8")


def check_past_due(
    trigger: TimerTriggerSpec, now: datetime, status: ScheduleStatus | None
) -> tuple[ScheduleStatus, timedelta]:
    """ScheduleMonitor.CheckPastDueAsync: the (possibly corrected) status and how far past due it is."""
    schedule = trigger.schedule
    if status is None:
        status = ScheduleStatus(last=None, next=schedule.next_after(now), last_updated=now)
    else:
        base = status.last or status.last_updated or now
        expected = schedule.next_after(base)
        if status.next != expected:  # the schedule changed since the status was written
            last_updated = base
            if expected is not None and now > expected:
                expected, last_updated = schedule.next_after(now), now
            status = ScheduleStatus(last=None, next=expected, last_updated=last_updated)
    past_due = now - status.next if status.next is not None and now > status.next else timedelta(0)
    return status, past_due


class TimerListener:
    def __init__(self, spec: FunctionSpec, services: HostServices, monitor: FileScheduleMonitor | None) -> None:
        assert isinstance(spec.trigger, TimerTriggerSpec)
        self.spec = spec
        self.trigger: TimerTriggerSpec = spec.trigger
        self._services = services
        self._monitor = monitor
        now = _now()
        self.use_monitor = (
            self.trigger.use_monitor
            if self.trigger.use_monitor is not None
            else self.trigger.schedule.occurrences_within(now, timedelta(minutes=1)) <= 1
        )
        self.status = ScheduleStatus(last=None, next=self.trigger.schedule.next_after(now), last_updated=None)
        self.running = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"runner-timer-{spec.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace: float) -> bool:
        """Stop scheduling; True if no invocation is still running after `grace` seconds."""
        self._stopping.set()
        self._thread.join(timeout=max(0.0, grace))
        if self._thread.is_alive():
            log.warning("Timer function '%s' still running at shutdown; abandoned", self.spec.name)
            self._services.stats.add(self.spec.name, abandoned=1)
            return False
        return True

    def _run(self) -> None:
        try:
            self._start_up()
            while not self._stopping.is_set():
                due = self.status.next
                if due is None:
                    log.warning("Timer '%s' (%s) has no next occurrence", self.spec.name, self.trigger.schedule)
                    self._stopping.wait()
                    return
                if self._stopping.wait(max(0.0, (due - _now()).total_seconds())):
                    return
                self._fire(_now())
        except Exception:
            log.exception("Timer listener of '%s' failed", self.spec.name)

    def _start_up(self) -> None:
        now = _now()
        past_due = timedelta(0)
        if self.use_monitor and self._monitor is not None:
            recorded = self._monitor.get(self.spec.name)
            self.status, past_due = check_past_due(self.trigger, now, recorded)
            if recorded is None or recorded != self.status:
                self._monitor.save(self.spec.name, self.status)
        upcoming = [moment.isoformat() for moment in itertools.islice(self.trigger.schedule.occurrences(now), 5)]
        log.info("The next 5 occurrences of the '%s' schedule (Cron: '%s') will be: %s", self.spec.name,
                 self.trigger.schedule, ", ".join(upcoming))  # fmt: skip
        if past_due > timedelta(0):
            log.info("Timer '%s' is past due (by %s); running now", self.spec.name, past_due)
            self._fire(now, past_due=True)
        elif self.trigger.run_on_startup:
            log.info("Timer '%s' runs on startup (runOnStartup)", self.spec.name)
            self._fire(now, run_on_startup=True)

    def _fire(self, fired_at: datetime, *, past_due: bool = False, run_on_startup: bool = False) -> None:
        """TimerListener.InvokeJobFunction, with the runtime retry policy around the invocation."""
        self.running = True
        try:
            self._services.stats.add(self.spec.name, timer_runs=1)
            self._invoke_with_retries(fired_at, past_due)
        finally:
            self.running = False
        adjusted = fired_at
        if not past_due and not run_on_startup and self.status.next is not None and self.status.next > fired_at:
            adjusted = self.status.next  # fired a little early (clock skew): compute from the scheduled time
        self.status = ScheduleStatus(last=adjusted, next=self.trigger.schedule.next_after(adjusted),
                                     last_updated=adjusted)  # fmt: skip
        if self.use_monitor and self._monitor is not None:
            self._monitor.save(self.spec.name, self.status)

    def _invoke_with_retries(self, fired_at: datetime, past_due: bool) -> None:
        policy = self.spec.retry
        backoff = (
            RandomizedExponentialBackoff(policy.minimum_interval, policy.maximum_interval)
            if policy is not None and policy.strategy == "exponential_backoff"
            else None
        )
        timer_info = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": self.status.as_json() if self.use_monitor else None,
            "IsPastDue": past_due,
        }
        attempt = 0
        while True:
            outcome = self._invoke_once(timer_info, fired_at, attempt)
            if outcome.succeeded or policy is None or self._stopping.is_set():
                return
            if policy.max_retry_count != -1 and attempt >= policy.max_retry_count:
                return
            delay = backoff.next_delay(succeeded=False) if backoff else policy.delay_interval
            attempt += 1
            log.info("Waiting for %s before retrying function execution. Next attempt: '%d'. Max retry count: "
                     "'%d'", delay, attempt, policy.max_retry_count)  # fmt: skip
            if self._stopping.wait(delay.total_seconds()):
                return

    def _invoke_once(self, timer_info: dict[str, Any], fired_at: datetime, attempt: int) -> Outcome:
        max_retries = self.spec.retry.max_retry_count if self.spec.retry else 0
        raw_type = self.spec.raw_trigger_type
        trigger_value = (
            raw_trigger_value(json.dumps(timer_info).encode(), raw_type)
            if raw_type
            else timer_trigger_value(timer_info)
        )
        future: Future[Outcome] = self._services.pool.submit(
            lambda: execute(
                self._services,
                self.spec,
                trigger_value,
                reason=f"Timer fired at {fired_at.isoformat()}",
                retry_count=attempt,
                max_retry_count=max_retries,
            )
        )
        return future.result()


def _now() -> datetime:
    return datetime.now(UTC)
