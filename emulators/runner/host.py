"""LocalFunctionsHost: the local stand-in for the Azure Functions host (Core Tools' `func start`).

    host = LocalFunctionsHost(app="function_app:app", root=Path("."), settings_overrides={...})
    host.start()                          # listeners and timers run in background threads
    host.run_until_idle(idle_seconds=1.0, timeout=120)
    host.stop()                           # graceful (also: `with LocalFunctionsHost(...) as host:`)
    host.stats                            # {function name: FunctionStats}

Start-up follows the host: app settings into the environment first, then import the app and index its functions
from the app object itself, then start one listener per trigger. See docs/local-runner.md for the behaviours and
what is not emulated.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from emulators.runner.app_settings import AppliedEnvironment, LocalSettings, find_settings_file, setting
from emulators.runner.bindings import FunctionSpec, QueueTriggerSpec, added_to_path, load_app, read_functions
from emulators.runner.errors import RunnerConfigError
from emulators.runner.execution import HostServices
from emulators.runner.host_config import HostConfig
from emulators.runner.leases import HOST_MESSAGE_LEASE, LeaseKeeper
from emulators.runner.queue_io import QueueClients
from emulators.runner.queue_listener import QueueListener
from emulators.runner.stats import FunctionStats, StatsBook
from emulators.runner.timer_listener import FileScheduleMonitor, TimerListener
from emulators.runner.worker_pool import WorkerPool, default_pool_size

log = logging.getLogger("emulators.runner")
IDLE_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class LoadedFunction:
    """What the runner found in the app, bindings resolved (for logs, the demo and tests)."""

    name: str
    trigger: str  # "queueTrigger" or "timerTrigger"
    source: str  # queue name, or NCRONTAB schedule
    outputs: tuple[str, ...]  # output queue names


class LocalFunctionsHost:
    def __init__(
        self,
        app: str = "function_app:app",
        root: Path = Path("."),
        settings_overrides: Mapping[str, str] | None = None,
        host_json: Path | Mapping[str, Any] | None = None,
        *,
        settings_file: Path | None = None,
        state_dir: Path | None = None,
        shutdown_grace: float = 10.0,
        message_lease: timedelta = HOST_MESSAGE_LEASE,
    ) -> None:
        """
        app: `module:attribute` of the v2-model FunctionApp, imported with `root` on sys.path.
        root: the project folder (script root): host.json, local.settings.json (or the sample) live here.
        settings_overrides: app settings that win over the file and the environment (e.g. dynamic endpoints).
        host_json: a host.json path or its parsed content; default `root/host.json`.
        settings_file: default `root/local.settings.json`, falling back to `root/local.settings.sample.json`.
        state_dir: where timer schedule status persists between runs (past-due detection); None: memory only.
        shutdown_grace: seconds `stop()` waits for running invocations before releasing their messages.
        message_lease: how long a received message stays invisible between renewals (host: 10 minutes).
        """
        self.app_spec = app
        self.root = Path(root).resolve()
        self._overrides = dict(settings_overrides or {})
        self._host_json = host_json if host_json is not None else self.root / "host.json"
        self._settings_file = settings_file
        self._state_dir = state_dir
        self.shutdown_grace = shutdown_grace
        self._message_lease = message_lease
        self._environment = AppliedEnvironment()
        self._services: HostServices | None = None
        self._queue_listeners: list[QueueListener] = []
        self._timer_listeners: list[TimerListener] = []
        self._specs: list[FunctionSpec] = []
        self.skipped_functions: list[tuple[str, str]] = []
        self._started = False
        self._path_entry: str | None = None

    # --- public API -------------------------------------------------------------------------------------------

    def start(self) -> LocalFunctionsHost:
        if self._started:
            raise RuntimeError("the host is already started")
        try:
            self._start()
        except BaseException:
            self._teardown()
            raise
        self._started = True
        return self

    def run_until_idle(self, idle_seconds: float = 1.0, timeout: float = 120.0) -> None:
        """Return once every trigger queue is empty (invisible messages included) and nothing runs, continuously
        for `idle_seconds`; raise TimeoutError after `timeout` seconds."""
        if not self._started:
            raise RuntimeError("start() the host first")
        deadline = time.monotonic() + timeout
        idle_since: float | None = None
        while True:
            now = time.monotonic()
            if self._is_idle():
                idle_since = idle_since if idle_since is not None else now
                if now - idle_since >= idle_seconds:
                    return
            else:
                idle_since = None
            if now >= deadline:
                raise TimeoutError(f"the host was not idle within {timeout:.0f}s: {self._activity()}")
            time.sleep(IDLE_POLL_SECONDS)

    def stop(self, grace: float | None = None) -> None:
        """Stop polling and timers, let running invocations finish within `grace` seconds (default
        `shutdown_grace`), then release unfinished messages so they are delivered again. Idempotent."""
        if not self._started:
            return
        self._started = False
        grace = self.shutdown_grace if grace is None else grace
        deadline = time.monotonic() + grace
        for listener in self._queue_listeners:
            listener.stop_polling()
        for timer in self._timer_listeners:
            timer.stop(deadline - time.monotonic())
        for listener in self._queue_listeners:
            if not listener.wait_until_drained(deadline - time.monotonic()):
                listener.abandon_in_flight()
        self._teardown()
        log.info("Host stopped. %s", self._summary())

    @property
    def stats(self) -> dict[str, FunctionStats]:
        return self._services.stats.snapshot() if self._services else {}

    @property
    def functions(self) -> list[LoadedFunction]:
        loaded = []
        for spec in self._specs:
            trigger = spec.trigger
            kind, source = (
                ("queueTrigger", trigger.queue_name)
                if isinstance(trigger, QueueTriggerSpec)
                else ("timerTrigger", trigger.schedule.expression)
            )
            loaded.append(LoadedFunction(spec.name, kind, source, tuple(o.queue_name for o in spec.outputs)))
        return loaded

    def __enter__(self) -> LocalFunctionsHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals --------------------------------------------------------------------------------------------

    def _start(self) -> None:
        settings_path = self._settings_file or find_settings_file(self.root)
        local = LocalSettings.load(settings_path)
        # Settings first, then import: module-level code of the app may read them (as in the real worker).
        self._environment.apply(local, self._overrides)
        self._environment.set_default("AzureWebJobsScriptRoot", str(self.root))
        self._environment.set_default("AZURE_FUNCTIONS_ENVIRONMENT", "Development")  # as `func start` sets
        runtime = setting("FUNCTIONS_WORKER_RUNTIME")
        if runtime and runtime.lower() != "python":
            raise RunnerConfigError(f"FUNCTIONS_WORKER_RUNTIME is {runtime!r}; this runner hosts Python apps")
        config = HostConfig.load(self._host_json, app_settings=os.environ)  # AzureFunctionsJobHost__* overrides apply
        self._path_entry = added_to_path(self.root)
        app = load_app(self.app_spec)
        self._specs, self.skipped_functions = read_functions(app, local)
        for name, trigger_type in self.skipped_functions:
            log.warning("Function '%s' has a %s trigger, which the local runner does not drive; skipped",
                        name, trigger_type)  # fmt: skip
        if not self._specs:
            raise RunnerConfigError(f"app {self.app_spec!r} has no queue- or timer-triggered function")
        pool_size = default_pool_size(setting("PYTHON_THREADPOOL_THREAD_COUNT"))
        self._services = HostServices(
            options=config.queues,
            function_timeout=config.function_timeout,
            script_root=str(self.root),
            clients=QueueClients(),
            leases=LeaseKeeper(self._message_lease),
            pool=WorkerPool(pool_size),
            stats=StatsBook([spec.name for spec in self._specs]),
        )
        monitor = FileScheduleMonitor(self._state_dir) if self._state_dir is not None else None
        for spec in self._specs:
            if isinstance(spec.trigger, QueueTriggerSpec):
                if spec.retry is not None:
                    log.warning("Function '%s': retry policies do not apply to queue triggers (the host retries "
                                "through the dequeue count and poison queue); ignored", spec.name)  # fmt: skip
                self._queue_listeners.append(QueueListener(spec, self._services))
            else:
                self._timer_listeners.append(TimerListener(spec, self._services, monitor))
        self._log_functions(settings_path, config)
        for listener in self._queue_listeners:
            listener.start()
        for timer in self._timer_listeners:
            timer.start()
        log.info("Host started (local runner, %d worker threads)", pool_size)

    def _log_functions(self, settings_path: Path | None, config: HostConfig) -> None:
        queues = config.queues
        log.info("App %s from %s; settings from %s", self.app_spec, self.root, settings_path or "(none)")
        log.info("Queues: batchSize=%d newBatchThreshold=%d maxPollingInterval=%s visibilityTimeout=%s "
                 "maxDequeueCount=%d messageEncoding=%s", queues.batch_size, queues.new_batch_threshold,
                 queues.max_polling_interval, queues.visibility_timeout, queues.max_dequeue_count,
                 queues.message_encoding)  # fmt: skip
        for function in self.functions:
            outputs = f" -> {', '.join(function.outputs)}" if function.outputs else ""
            log.info("Functions.%s: %s %s%s", function.name, function.trigger, function.source, outputs)

    def _is_idle(self) -> bool:
        if any(timer.running for timer in self._timer_listeners):
            return False
        if any(listener.in_flight() for listener in self._queue_listeners):
            return False
        return all(listener.backlog() == 0 for listener in self._queue_listeners)

    def _activity(self) -> str:
        parts = [
            f"{listener.trigger.queue_name}: {listener.backlog()} queued, {listener.in_flight()} running"
            for listener in self._queue_listeners
        ]
        parts += [f"timer {timer.spec.name} running" for timer in self._timer_listeners if timer.running]
        return "; ".join(parts) or "no triggers"

    def _summary(self) -> str:
        return "; ".join(
            f"{name}: " + ", ".join(f"{key}={value}" for key, value in stats.as_dict().items() if value)
            for name, stats in self.stats.items()
        )

    def _teardown(self) -> None:
        services = self._services
        if services is not None:
            services.pool.shutdown()
            services.leases.stop()
            services.async_runner.close()
            services.clients.close()
        self._queue_listeners, self._timer_listeners = [], []
        self._environment.restore()
        if self._path_entry is not None and self._path_entry in sys.path:
            sys.path.remove(self._path_entry)
        self._path_entry = None
