"""`make run` (= `python -m emulators.demo`): the whole product on the local cloud, with the sample data set.

1. Start the local cloud in this process: Azurite, Entra ID, the managed identity endpoint, Key Vault and the
   Dataverse environments contoso and fabrikam with the emulator's realistic latency model (emulators/cloud.py).
2. Enqueue the sample data set with the producer helper (emulators/demo/scenario.py says where each environment's
   records go) plus the raw invalid messages, and work out what every record must become (expectations.py).
3. Run function_app.py in the local Functions runner until the records, poison and bulk queues are empty; inject
   a throttling episode and a short outage on the way (scenario.py).
4. Read back every row and every dead-letter entry, compare (verify.py), print the summary (summary.py).
   Exit 0 when everything landed or was dead-lettered as expected, 1 otherwise, 130 when interrupted.

Everything the run logs goes to `.local-cloud/demo/demo.log` (JSON lines, logfile.py). The cloud, Azurite and the
runner are stopped on success, failure, Ctrl+C and SIGTERM.

The sample message that is not base64 goes to the bulk queue, where the bulk drain dead-letters it as
`queue_encoding`. The records trigger does the same (host.json messageEncoding is `none` and the app undoes the
base64 itself, shared/queues/triggers.py); tests/e2e/test_bad_input.py shows that path.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from emulators.cloud import SAMPLE_SETTINGS, LocalCloud, sample_values
from emulators.dataverse.admin_client import DataverseAdmin
from emulators.dataverse.schema import Schema
from emulators.demo import scenario
from emulators.demo.expectations import ExpectedRow, RowId, SentRecord, expect_rows, landed_counts
from emulators.demo.logfile import EventTally, log_to_file
from emulators.demo.sample import SampleData, expect_invalid_message, load_sample
from emulators.demo.summary import DemoReport, EpisodeReport, RouteReport, render
from emulators.demo.verify import Observed, verify
from emulators.runner import LocalFunctionsHost
from shared.config.settings import Settings
from shared.queues.adapters import QueueAdapters
from shared.queues.clients import ensure_queues
from shared.queues.deadletter_store import EntryFilter
from shared.queues.names import ALL_QUEUES, BULK_QUEUE, DEAD_LETTER_QUEUE, RECORDS_POISON_QUEUE, RECORDS_QUEUE
from shared.queues.producer import RecordProducer, prepare
from shared.sync.catalog import Catalog
from shared.sync.deadletter import DeadLetter

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = ROOT / ".local-cloud" / "demo"
DEFAULT_TIMEOUT_SECONDS = 100.0
PROGRESS_EVERY_SECONDS = 3.0
DRAINED_QUEUES = (RECORDS_QUEUE, RECORDS_POISON_QUEUE, BULK_QUEUE)
HOST_SETTING = "AzureFunctionsJobHost__extensions__queues__{}"  # host.json override by app setting


class DemoTimeout(RuntimeError):
    pass


@dataclass
class Sent:
    """What went onto the queues so far."""

    routes: dict[tuple[str, str], RouteReport] = field(default_factory=dict)  # (environment, queue) -> totals
    records: list[SentRecord] = field(default_factory=list)
    invalid_codes: dict[str, Counter[str]] = field(default_factory=dict)  # message id -> expected codes
    invalid_names: dict[str, str] = field(default_factory=dict)  # message id -> sample name
    messages: int = 0  # producer messages so far (numbers them across sends)
    seconds: float = 0.0


@dataclass
class Waiting:
    """Records held back until their parents have landed (`rows` rows of `table` in the route's environment)."""

    route: scenario.Route
    label: str
    records: list[dict[str, Any]]
    table: str
    rows: int


class Demo:
    def __init__(self, state_dir: Path, tally: EventTally, *, timeout: float, say: Callable[[str], None]) -> None:
        self.state_dir = state_dir
        self.tally = tally
        self.timeout = timeout
        self.say = say
        self.cloud: LocalCloud | None = None
        self.host: LocalFunctionsHost | None = None
        self.admin: DataverseAdmin | None = None
        self.started = time.perf_counter()
        self.sync_started: float | None = None  # set when the runner starts; progress lines show time since
        self.sent = Sent()
        self.schema = Schema.load()

    # --- the run ---------------------------------------------------------------------------------------------

    def run(self) -> DemoReport:
        cloud = self.cloud = LocalCloud(self.state_dir).start()
        assert cloud.dataverse_admin_url is not None
        admin = self.admin = DataverseAdmin(cloud.dataverse_admin_url, ca_bundle=str(cloud.ca.ca_bundle))
        self.say(f"local cloud up in {cloud.startup_seconds:.1f} s: Entra ID, managed identity, Key Vault, Azurite, "
                 f"Dataverse {' + '.join(cloud.org_urls)} (realistic latency)")  # fmt: skip
        overrides = {**cloud.app_settings(), **{name: value for name, (value, _) in scenario.DEMO_SETTINGS.items()}}
        overrides.update({HOST_SETTING.format(k): v for k, v in scenario.HOST_QUEUE_CHANGES.items()})
        settings = Settings.from_environ({**sample_values(), **overrides})
        adapters = QueueAdapters.from_settings(settings)
        ensure_queues(adapters.service, ALL_QUEUES)
        catalog = Catalog(settings.environments)
        sample = load_sample()
        self._send_invalid(sample, catalog, adapters)
        waiting = [self._send_parents(route, sample, catalog, adapters) for route in scenario.ROUTES]
        sync_started = self.sync_started = time.perf_counter()
        self.host = LocalFunctionsHost(
            app="function_app:app", root=ROOT, settings_overrides=overrides, settings_file=SAMPLE_SETTINGS
        ).start()
        self.say("local Functions runner started: sync_records, triage_poison, drain_bulk, health_check")
        episode = self._drain(adapters, catalog, waiting)
        self.host.stop()
        sync_seconds = time.perf_counter() - sync_started
        stats = self.host.stats
        expected = expect_rows(self.sent.records, self.schema)
        verdict = verify(expected, self.sent.invalid_codes, self._observe(admin, adapters, expected), self.schema)
        episode.remaining_faults = len(admin.call("GET", f"/orgs/{episode.environment}/faults"))
        return DemoReport(
            routes=list(self.sent.routes.values()),
            invalid_names=self.sent.invalid_names,
            expected=expected,
            verdict=verdict,
            counters={name: admin.counters(name) for name in cloud.org_urls},
            episode=episode,
            events=dict(self.tally.counts),
            first_events=dict(self.tally.first),
            function_stats={name: s.as_dict() for name, s in stats.items()},
            cloud_seconds=cloud.startup_seconds,
            enqueue_seconds=self.sent.seconds,
            sync_seconds=sync_seconds,
            total_seconds=time.perf_counter() - self.started,
            log_path=self.state_dir / "demo.log",
        )

    def close(self) -> None:
        """Stop whatever was started, in reverse order; safe to call more than once."""
        if self.host is not None:
            self.host.stop(grace=2.0)  # unfinished messages are released, delivered again next time
            self.host = None
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None

    # --- sending ---------------------------------------------------------------------------------------------

    def _send(
        self,
        route: scenario.Route,
        label: str,
        records: list[dict[str, Any]],
        catalog: Catalog,
        adapters: QueueAdapters,
    ) -> list[SentRecord]:
        """Validate and send with the producer helper; returns the records as sent, numbered by message."""
        started = time.perf_counter()
        prepared = prepare(records, catalog, environment=route.environment)
        report = RecordProducer(adapters.sender, catalog).send_prepared(
            prepared, queue=route.queue, max_records=route.records_per_message
        )
        sent: list[SentRecord] = []
        for message in report.messages:
            batch = prepared.records[message.first : message.first + message.count]
            sent.extend(SentRecord(record, self.sent.messages) for record in batch)
            self.sent.messages += 1
        self.sent.records.extend(sent)
        totals = self.sent.routes.get(
            (route.environment, route.queue), RouteReport(route.environment, route.queue, 0, 0)
        )
        self.sent.routes[(route.environment, route.queue)] = RouteReport(
            route.environment, route.queue, totals.records + report.records, totals.messages + len(report.messages)
        )
        self.sent.seconds += time.perf_counter() - started
        self.say(f"{self._clock()}sent {report.records:,} {label} for {route.environment} to {route.queue} in "
                 f"{len(report.messages)} messages (producer helper)")  # fmt: skip
        return sent

    def _send_parents(
        self, route: scenario.Route, sample: SampleData, catalog: Catalog, adapters: QueueAdapters
    ) -> Waiting:
        """Send the accounts now; the contacts wait until every account that can land has landed."""
        accounts = self._send(route, "accounts", sample.accounts, catalog, adapters)
        landing = landed_counts(expect_rows(accounts, self.schema).values())[(route.environment, "account")]
        return Waiting(route, "contacts", sample.contacts, "account", landing)

    def _send_invalid(self, sample: SampleData, catalog: Catalog, adapters: QueueAdapters) -> None:
        for message in sample.invalid_messages:
            if message.raw:  # through a client without the base64 encode policy: as a misconfigured producer
                sent = adapters.service.get_queue_client(scenario.NOT_BASE64_QUEUE).send_message(message.body)
                message_id = str(sent.id)
            else:
                message_id = adapters.sender.send(scenario.INVALID_MESSAGES_QUEUE, message.body)
            self.sent.invalid_codes[message_id] = expect_invalid_message(message, catalog).codes
            self.sent.invalid_names[message_id] = message.name
        self.say(f"sent {len(sample.invalid_messages)} invalid messages (not JSON, wrong shape, malicious values, "
                 f"oversize, wrong encoding)")  # fmt: skip

    # --- running ---------------------------------------------------------------------------------------------

    def _drain(self, adapters: QueueAdapters, catalog: Catalog, waiting: list[Waiting]) -> EpisodeReport:
        """Run until nothing waits and the queues are empty and idle; send held-back records, inject the episode
        and print progress on the way."""
        assert self.host is not None
        episode = EpisodeReport(scenario.EPISODE_ENVIRONMENT, scenario.episode_faults())
        deadline = time.monotonic() + self.timeout
        next_progress = time.monotonic() + PROGRESS_EVERY_SECONDS
        while True:
            counts = {route.environment: self._counts(route.environment) for route in scenario.ROUTES}
            for held in list(waiting):
                if counts[held.route.environment].get(held.table, 0) >= held.rows:
                    self._send(held.route, held.label, held.records, catalog, adapters)
                    waiting.remove(held)
            self._episode_step(episode, counts)
            if time.monotonic() >= next_progress:
                self.say(self._progress(adapters, counts))
                next_progress = time.monotonic() + PROGRESS_EVERY_SECONDS
            if not waiting and self._drained(adapters):
                return episode
            if time.monotonic() >= deadline:
                raise DemoTimeout(f"the queues were not drained within {self.timeout:.0f} s: "
                                  f"{self._progress(adapters, counts)}")  # fmt: skip

    def _drained(self, adapters: QueueAdapters) -> bool:
        assert self.host is not None
        try:
            self.host.run_until_idle(idle_seconds=1.0, timeout=1.2)  # records and poison queues, timers
        except TimeoutError:
            return False
        return adapters.depth.approximate_count(BULK_QUEUE) == 0  # the bulk queue is not a trigger queue

    def _episode_step(self, episode: EpisodeReport, counts: dict[str, dict[str, int]]) -> None:
        assert self.admin is not None
        elapsed = self._elapsed()
        if episode.injected_at is None and sum(counts[episode.environment].values()) >= scenario.EPISODE_AFTER_ROWS:
            for rule in episode.faults:
                self.admin.add_fault(episode.environment, **rule)
            episode.injected_at = elapsed
            self.say(f"{self._clock()}throttling episode on {episode.environment}: {episode.describe()}")
        limited = episode.limited_environment
        if episode.limited_at is None and sum(counts[limited].values()) >= scenario.LIMITED_AFTER_ROWS:
            episode.normal_concurrency = int(self.admin.limits(limited)["concurrency"])
            self.admin.set_limits(limited, concurrency=scenario.LIMITED_CONCURRENCY)
            episode.limited_at = elapsed
            self.say(f"{self._clock()}service-protection limit on {limited}: {scenario.LIMITED_CONCURRENCY} "
                     f"concurrent requests for {scenario.LIMITED_SECONDS:.0f} s (normally "
                     f"{episode.normal_concurrency})")  # fmt: skip
        elif (
            episode.limited_at is not None
            and episode.lifted_at is None
            and elapsed >= episode.limited_at + scenario.LIMITED_SECONDS
        ):
            self.admin.set_limits(limited, concurrency=episode.normal_concurrency)
            episode.lifted_at = elapsed
            self.say(f"{self._clock()}{limited}: concurrency limit back to {episode.normal_concurrency}")

    def _counts(self, environment: str) -> dict[str, int]:
        assert self.admin is not None
        return self.admin.counts(environment)

    def _elapsed(self) -> float:
        return time.perf_counter() - self.sync_started if self.sync_started is not None else 0.0

    def _clock(self) -> str:
        return f"t={self._elapsed():5.1f}s  " if self.sync_started is not None else ""

    def _progress(self, adapters: QueueAdapters, counts: dict[str, dict[str, int]]) -> str:
        rows = " · ".join(f"{environment} {sum(c.values()):,} rows" for environment, c in counts.items())
        depth = adapters.depth.approximate_count
        queued = ", ".join(f"{q.removeprefix('dvsync-')} {depth(q)}" for q in DRAINED_QUEUES)
        return f"{self._clock()}{rows} · dead letters {depth(DEAD_LETTER_QUEUE)} · queued: {queued}"

    def _observe(self, admin: DataverseAdmin, adapters: QueueAdapters, expected: dict[RowId, ExpectedRow]) -> Observed:
        tables = sorted({row.table for row in expected.values()})
        rows = {
            (route.environment, table): admin.rows(route.environment, table)
            for route in scenario.ROUTES
            for table in tables
        }
        stored = adapters.dead_letters.select(EntryFilter())
        entries: list[DeadLetter] = [s.entry for s in stored if s.entry is not None]
        depths = {queue: adapters.depth.approximate_count(queue) for queue in DRAINED_QUEUES}
        unreadable = len(stored) - len(entries)
        if unreadable:
            depths[f"{DEAD_LETTER_QUEUE} (unreadable entries)"] = unreadable
        return Observed(rows=rows, dead_letters=entries, queue_depths=depths)


# --- command line -------------------------------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, flush=True)


def _stop_on_sigterm() -> None:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="CA files and demo.log go here")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="give up after SECONDS")
    parser.add_argument("--json", action="store_true", help="print the summary's figures as one JSON line too")
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    log_path = args.state_dir / "demo.log"
    _, tally = log_to_file(log_path)
    _say(f"dataverse-sync demo — logs: {log_path} (JSON lines)")
    demo = Demo(args.state_dir, tally, timeout=args.timeout, say=_say)
    try:
        report = demo.run()
    except KeyboardInterrupt:
        _say("interrupted: stopping the runner and the local cloud")
        return 130
    except DemoTimeout as exc:
        _say(f"FAILED: {exc}; see {log_path}")
        return 1
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C must not leave Azurite running
        try:
            demo.close()
        finally:
            signal.signal(signal.SIGINT, previous)
    _say(render(report))
    if args.json:
        _say(json.dumps(report.figures()))
    return 0 if report.ok else 1
