"""The demo's end-of-run summary: what landed, what was dead-lettered and why, the trouble survived, the rate.

`DemoReport` holds the figures (plain data, so the rendering is tested without running anything); `render()`
turns them into the text `make run` prints.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.demo import scenario
from emulators.demo.expectations import ExpectedRow, RowId, landed_counts
from emulators.demo.verify import Verdict
from shared.sync.deadletter import DeadLetter

MAX_PROBLEMS_SHOWN = 15
EXAMPLE_CHARS = 110


@dataclass(frozen=True)
class RouteReport:
    environment: str
    queue: str
    records: int
    messages: int


@dataclass
class EpisodeReport:
    """The trouble injected: scripted faults in one environment, a lowered service-protection limit in another.
    Times are seconds into the sync phase."""

    environment: str
    faults: list[dict[str, Any]]
    injected_at: float | None = None
    remaining_faults: int = 0  # rules not used up by the end (0: every scripted fault fired)
    limited_environment: str = scenario.LIMITED_ENVIRONMENT
    limited_at: float | None = None
    lifted_at: float | None = None
    normal_concurrency: int = 52  # the limited environment's concurrency limit before and after

    def describe(self) -> str:
        throttles = [f"429 {f['limit_code']} x{f['count']}" for f in self.faults if f["kind"] == "429"]
        others = [f"{'connection reset' if f['kind'] == 'reset' else f['kind']} x{f['count']}"
                  for f in self.faults if f["kind"] != "429"]  # fmt: skip
        return f"{', '.join(throttles)}, then {', '.join(others)} (Retry-After 1 s)"


@dataclass
class DemoReport:
    routes: list[RouteReport]
    invalid_names: Mapping[str, str]  # message id -> sample name
    expected: Mapping[RowId, ExpectedRow]
    verdict: Verdict
    counters: Mapping[str, Mapping[str, Any]]  # environment -> the emulator's counters
    episode: EpisodeReport
    events: Mapping[str, int]  # structured log events by name
    first_events: Mapping[str, Mapping[str, Any]]
    function_stats: Mapping[str, Mapping[str, int]]
    cloud_seconds: float
    enqueue_seconds: float
    sync_seconds: float
    total_seconds: float
    log_path: Path

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    @property
    def rows_written(self) -> int:
        return sum(self.verdict.landed.values())

    @property
    def dead_lettered(self) -> int:
        return len(self.verdict.data_dead_letters) + len(self.verdict.message_dead_letters)

    @property
    def throttled_responses(self) -> int:
        return sum(throttled(c) for c in self.counters.values())

    @property
    def faults_survived(self) -> int:
        return sum(non_throttle_faults(c) for c in self.counters.values())

    def figures(self) -> dict[str, Any]:
        """The headline numbers as JSON (`--json`)."""
        return {
            "ok": self.ok,
            "records_sent": sum(route.records for route in self.routes),
            "invalid_messages_sent": len(self.invalid_names),
            "rows_written": self.rows_written,
            "dead_lettered": self.dead_lettered,
            "http_requests": sum(requests_sent(c) for c in self.counters.values()),
            "throttled_responses": self.throttled_responses,
            "faults_survived": self.faults_survived,
            "sync_seconds": round(self.sync_seconds, 2),
            "rows_per_s": round(self.rows_written / self.sync_seconds, 1) if self.sync_seconds else None,
            "problems": len(self.verdict.problems),
        }


# --- counters -------------------------------------------------------------------------------------------------


def requests_sent(counters: Mapping[str, Any]) -> int:
    """Every HTTP request the app sent: each got a response, except those answered by a connection reset."""
    return int(sum(counters.get("responses", {}).values()) + counters.get("faults", {}).get("reset", 0))


def throttled(counters: Mapping[str, Any]) -> int:
    """429s answered: by the service-protection limiter, and scripted ones."""
    return int(counters.get("responses", {}).get("429", 0))


def non_throttle_faults(counters: Mapping[str, Any]) -> int:
    return sum(count for kind, count in counters.get("faults", {}).items() if kind != "429")


# --- rendering ------------------------------------------------------------------------------------------------


def render(report: DemoReport) -> str:
    sections = [
        _written(report),
        _dead_letters(report),
        _along_the_way(report),
        _traffic(report),
        _throughput(report),
        _settings(report),
        _result(report),
    ]
    return "\n\n".join(section for section in sections if section)


def _written(report: DemoReport) -> str:
    sent: Counter[tuple[str, str]] = Counter()
    for row in report.expected.values():
        sent[(row.environment, row.table)] += row.records
    expected = landed_counts(report.expected.values())
    queue_of = {route.environment: route.queue for route in report.routes}
    lines = [
        "Written to Dataverse (read back from the emulator, compared with what the sample data must become)",
        f"  {'environment':<12} {'via':<16} {'table':<9} {'records sent':>12} {'rows expected':>14} {'rows found':>11}",
    ]
    for environment, table in sorted(sent):
        lines.append(
            f"  {environment:<12} {queue_of.get(environment, '?'):<16} {table:<9} {sent[(environment, table)]:>12,} "
            f"{expected[(environment, table)]:>14,} {report.verdict.landed[(environment, table)]:>11,}"
        )
    return "\n".join(lines)


def _dead_letters(report: DemoReport) -> str:
    groups: dict[str, list[DeadLetter]] = defaultdict(list)
    for entry in [*report.verdict.data_dead_letters, *report.verdict.message_dead_letters]:
        groups[f"{entry.reason.kind.value}/{entry.reason.code}"].append(entry)
    lines = [f"Dead-lettered: {report.dead_lettered} entries, each with its reason (python -m shared deadletter list)"]
    for reason, entries in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        lines.append(f"  {len(entries):>5}  {reason:<38} e.g. {_example(entries[0], report.invalid_names)}")
    return "\n".join(lines)


def _example(entry: DeadLetter, invalid_names: Mapping[str, str]) -> str:
    if entry.source.message_id in invalid_names:
        where = f'"{invalid_names[entry.source.message_id]}"'
        what = f"{entry.reason.path}: {entry.reason.message}" if entry.reason.path else entry.reason.message
    else:
        key = entry.record.get("key") if entry.record else None
        key_text = ",".join(str(v) for v in key.values()) if isinstance(key, dict) else "?"
        where = f"{entry.environment}/{entry.table} {key_text}"
        dataverse = entry.dataverse
        what = (
            " ".join(str(part) for part in (dataverse.status, dataverse.code, dataverse.message) if part)
            if dataverse is not None and entry.reason.kind.value == "rejected"
            else entry.reason.message
        )
    text = f"{where}: {what}"
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def _along_the_way(report: DemoReport) -> str:
    events, stats = report.events, report.function_stats
    runs = stats.get("drain_bulk", {}).get("timer_runs", 0)
    invocations = ", ".join(
        f"{name} {s.get('invocations', 0)} ({s.get('failures', 0)} failed)"
        for name, s in stats.items()
        if name != "drain_bulk" and s.get("invocations", 0)
    )
    return "\n".join(
        [
            "Along the way",
            f"  superseded by a newer change of the same row: {events.get('record.superseded', 0)} · "
            f"re-sent later because the parent was not there yet: {events.get('record.parent_missing', 0)} · "
            f"messages continued/retried/poisoned: {events.get('message.continued', 0)}/"
            f"{events.get('message.retry', 0)}/{events.get('message.poisoned', 0)}",
            f"  invocations: {invocations or 'none'}; drain_bulk: {runs} timer runs, "
            f"{events.get('bulk.drained', 0)} with messages",
        ]
    )


def _traffic(report: DemoReport) -> str:
    lines = ["Dataverse traffic (the emulator's counters)"]
    for environment, counters in report.counters.items():
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(counters.get("requests", {}).items(),
                                                                       key=lambda item: -item[1]))  # fmt: skip
        codes = ", ".join(f"{code} x{count}" for code, count in counters.get("throttled", {}).items())
        faults = ", ".join(f"{kind} x{count}" for kind, count in counters.get("faults", {}).items())
        lines.append(
            f"  {environment:<9} {requests_sent(counters):>5} requests ({kinds}) · 429s {throttled(counters)}"
            + (f" ({codes})" if codes else "")
            + (f" · injected: {faults}" if faults else "")
        )
    episode = report.episode
    when = f"t={episode.injected_at:.1f}s" if episode.injected_at is not None else "never (not reached)"
    lines.append(f"  throttling episode on {episode.environment} at {when}: {episode.describe()}"
                 + (f"; {episode.remaining_faults} rule(s) unused" if episode.remaining_faults else ""))  # fmt: skip
    if episode.limited_at is not None and episode.lifted_at is not None:
        limited = f"from t={episode.limited_at:.1f}s to t={episode.lifted_at:.1f}s"
    else:
        limited = "never (not reached)"
    lines.append(f"  service-protection limit on {episode.limited_environment} {limited}: "
                 f"{scenario.LIMITED_CONCURRENCY} concurrent requests (normally {episode.normal_concurrency}), "
                 f"enforced by the emulator's own limiter")  # fmt: skip
    outcome = "survived" if report.ok else "answered"
    lines.append(f"  {report.throttled_responses} x 429 and {report.faults_survived} outage faults {outcome}: "
                 f"retried after Retry-After or with back-off, nothing lost")  # fmt: skip
    return "\n".join(lines)


def _throughput(report: DemoReport) -> str:
    rate = report.rows_written / report.sync_seconds if report.sync_seconds else 0.0
    return (
        f"Throughput: {report.rows_written:,} rows written in {report.sync_seconds:.1f} s = {rate:,.0f} rows/s "
        f"(from runner start to empty queues; local cloud start {report.cloud_seconds:.1f} s, enqueue "
        f"{report.enqueue_seconds:.1f} s, {report.total_seconds:.1f} s in all). Dependency retries and the "
        f"throttling dominate: see `make bench` for throughput."
    )


def _settings(report: DemoReport) -> str:
    changed = ", ".join(f"{name}={value} ({default})" for name, (value, default) in scenario.DEMO_SETTINGS.items())
    host = ", ".join(f"{name}={value}" for name, value in scenario.HOST_QUEUE_CHANGES.items())
    example = report.first_events.get("record.written", {})
    lines = [
        f"Demo-only settings (production value in brackets): {changed}; host.json extensions.queues {host} "
        f"(5 s) through AzureFunctionsJobHost__extensions__queues__*. Other settings: local.settings.sample.json.",
        f"Logs: {report.log_path} (JSON lines)",
    ]
    if example.get("message_id"):
        lines.append(
            f"  correlation: message {example['message_id']} → record {example.get('ref')} → Dataverse request "
            f"{example.get('request_id')}; follow one: jq -c 'select(.ref == \"{example.get('ref')}\")' "
            f"{report.log_path}"
        )
    return "\n".join(lines)


def _result(report: DemoReport) -> str:
    verdict = report.verdict
    if verdict.ok:
        return (
            f"RESULT: OK — all {report.rows_written:,} rows that had to land are in Dataverse with their values and "
            f"lookups; the other records and messages are {report.dead_lettered} dead-letter entries with the "
            f"expected reasons; no queue holds anything."
        )
    shown = [f"  - {problem}" for problem in verdict.problems[:MAX_PROBLEMS_SHOWN]]
    more = len(verdict.problems) - MAX_PROBLEMS_SHOWN
    if more > 0:
        shown.append(f"  ... and {more} more")
    return "\n".join([f"RESULT: FAILED — {len(verdict.problems)} problem(s):", *shown])
