"""`make bench`: sync throughput of dataverse-sync against the Dataverse emulator, and a naive baseline beside it.

    .venv/bin/python -m bench.sync_throughput [--records 50000] [--queue records|bulk] [--baseline-records 2000]

1. The local cloud runs in a child process (bench/cloud_process.py) with the emulator's realistic latency model
   and Dataverse's default service protection limits (6,000 requests / 1,200,000 ms execution time per 300 s,
   52 concurrent requests per application user).
2. `--records` accounts are enqueued with the producer helper (to dvsync-records, or dvsync-bulk with
   `--queue bulk`), then function_app.py runs in the local Functions runner (the same code as `make run`: runner,
   composition root, sync core, Dataverse client) until every record is a row in contoso; progress every 5 s.
3. The baseline writes `--baseline-records` other accounts into fabrikam one PATCH at a time (bench/baseline.py).
4. One JSON line last: records, seconds, records_per_s, baseline_records_per_s, http_requests,
   throttled_responses, dead_lettered, peak_rss_mb, and what explains them (bulk_requests, dop, CPU, the
   emulator's modeled capacity). docs/benchmark.md shows and discusses the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.baseline import BaselineResult, acquire_token, upsert_one_by_one
from bench.cloud_process import CloudProcess
from bench.workload import accounts
from emulators.cloud import SAMPLE_SETTINGS, sample_values
from emulators.dataverse.admin_client import DataverseAdmin
from emulators.demo.logfile import log_to_file
from emulators.demo.summary import requests_sent, throttled
from emulators.runner import LocalFunctionsHost, RunnerConfigError
from emulators.runner.app_settings import parse_overrides
from shared import bootstrap
from shared.config.settings import Settings
from shared.dataverse.environments import DataverseEnvironments
from shared.queues.adapters import QueueAdapters
from shared.queues.clients import ensure_queues
from shared.queues.names import ALL_QUEUES, BULK_QUEUE, DEAD_LETTER_QUEUE, RECORDS_QUEUE
from shared.queues.producer import RecordProducer
from shared.sync.catalog import Catalog

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = ROOT / ".local-cloud" / "bench"
PROGRESS_EVERY_SECONDS = 5.0
POLL_SECONDS = 0.25
TABLE = "account"
QUEUES = {"records": RECORDS_QUEUE, "bulk": BULK_QUEUE}
# The bulk drain's timer: every 2 s instead of the sample's 10 s, so a run starts soon after the runner does.
BULK_SETTINGS = {"BULK_DRAIN_SCHEDULE": "*/2 * * * * *"}


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class SyncResult:
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    peak_in_flight: int
    dop: int | None
    client: dict[str, Any]
    function_stats: dict[str, dict[str, int]]


# --- the sync phase ---------------------------------------------------------------------------------------------


def run_sync(
    admin: DataverseAdmin, overrides: dict[str, str], *, environment: str, total: int, timeout: float
) -> SyncResult:
    """Run the app in the local runner until `total` rows are in `environment`; time only that."""
    me = psutil.Process()
    cpu_before = sum(me.cpu_times()[:2])
    host = LocalFunctionsHost(
        app="function_app:app", root=ROOT, settings_overrides=overrides, settings_file=SAMPLE_SETTINGS
    )
    started = time.perf_counter()
    host.start()
    peak_rss = peak_in_flight = 0
    try:
        next_progress = started + PROGRESS_EVERY_SECONDS
        while True:
            rows = admin.counts(environment)[TABLE]
            peak_rss = max(peak_rss, me.memory_info().rss)
            client = _client(environment)
            if client is not None:
                peak_in_flight = max(peak_in_flight, client.limiter.in_flight)
            now = time.perf_counter()
            if rows >= total:
                seconds = now - started
                break
            if now >= next_progress:
                say(_progress(admin, environment, rows, total, now - started))
                next_progress = now + PROGRESS_EVERY_SECONDS
            if now - started > timeout:
                raise TimeoutError(f"only {rows:,} of {total:,} rows after {timeout:.0f} s")
            time.sleep(POLL_SECONDS)
        host.run_until_idle(idle_seconds=0.5, timeout=60)  # the last invocations finish and delete their messages
    finally:
        host.stop()
    client = _client(environment)
    return SyncResult(
        seconds=seconds,
        peak_rss_mb=peak_rss / 2**20,
        cpu_seconds=sum(me.cpu_times()[:2]) - cpu_before,
        peak_in_flight=peak_in_flight,
        dop=client.limiter.ceiling if client else None,
        client=client.stats.snapshot() if client else {},
        function_stats={name: stats.as_dict() for name, stats in host.stats.items()},
    )


def _client(environment: str) -> Any:
    """The app's Dataverse client of `environment`, once the composition root built it (peeked at for its
    concurrency limiter and request statistics; None before the first invocation)."""
    built = bootstrap._built  # a read-only look at the app's state, for measurements
    writer = built.records.engine.writer if built is not None else None
    return writer.client(environment) if isinstance(writer, DataverseEnvironments) else None


def _progress(admin: DataverseAdmin, environment: str, rows: int, total: int, elapsed: float) -> str:
    counters = admin.counters(environment)
    client = _client(environment)
    in_flight = f" · in flight {client.limiter.in_flight}/{client.limiter.limit}" if client else ""
    return (
        f"t={elapsed:6.1f}s  {rows:>7,}/{total:,} rows · {rows / elapsed:,.0f} rows/s · "
        f"{requests_sent(counters):,} requests · 429s {throttled(counters)}{in_flight}"
    )


# --- figures ------------------------------------------------------------------------------------------------


def modeled_capacity(
    limits: dict[str, Any], latency: dict[str, Any], *, records_per_request: float, dop: int
) -> dict[str, float]:
    """What the emulator's model allows one application user (docs/dataverse-emulator.md), in records/s.

    A bulk request of n records takes scale x (base_ms + n x bulk_record_ms) of server time, slept and counted
    against the execution-time limit (limits.py)."""
    scale = float(latency["scale"])
    per_request_ms = scale * (float(latency["base_ms"]) + records_per_request * float(latency["bulk_record_ms"]))
    per_record_ms = per_request_ms / records_per_request
    window = float(limits["window_seconds"])
    return {
        "request_ms": round(per_request_ms, 1),
        # Sustained: the window's execution time spread over the window.
        "execution_time_cap_records_per_s": round(float(limits["execution_ms"]) / window / per_record_ms, 1),
        # Before the first 0x80072321: the whole window's execution time spent at once.
        "execution_time_burst_records": round(float(limits["execution_ms"]) / per_record_ms),
        "request_count_cap_records_per_s": round(float(limits["requests"]) / window * records_per_request, 1),
        # `dop` requests always in flight, each taking its modeled time.
        "latency_cap_records_per_s": round(dop * records_per_request / (per_request_ms / 1000), 1),
    }


def enqueue(settings: Settings, records: list[dict[str, Any]], *, environment: str, queue: str) -> tuple[int, float]:
    adapters = QueueAdapters.from_settings(settings)
    ensure_queues(adapters.service, ALL_QUEUES)
    started = time.perf_counter()
    report = RecordProducer(adapters.sender, Catalog(settings.environments)).send_records(
        records, environment=environment, queue=queue
    )
    return len(report.messages), time.perf_counter() - started


def leftovers(settings: Settings) -> dict[str, int]:
    adapters = QueueAdapters.from_settings(settings)
    return {queue: adapters.depth.approximate_count(queue) for queue in ALL_QUEUES}


def figures(
    args: argparse.Namespace,
    cloud: CloudProcess,
    sync: SyncResult,
    baseline: BaselineResult,
    *,
    tuning: dict[str, str],
    messages: int,
    enqueue_seconds: float,
    queues: dict[str, int],
) -> dict[str, Any]:
    assert cloud.admin is not None
    counters = cloud.admin.counters(args.environment)
    limits = cloud.admin.limits(args.environment)
    bulk_requests = int(counters.get("requests", {}).get("UpsertMultiple", 0))
    records_per_request = counters.get("operations", 0) / bulk_requests if bulk_requests else 0.0
    usage = cloud.usage()
    rate = args.records / sync.seconds
    return {
        "records": args.records,
        "seconds": round(sync.seconds, 2),
        "records_per_s": round(rate, 1),
        "baseline_records": baseline.records,
        "baseline_seconds": round(baseline.seconds, 2),
        "baseline_records_per_s": round(baseline.records_per_s, 1),
        "speedup": round(rate / baseline.records_per_s, 1) if baseline.records_per_s else None,
        "http_requests": requests_sent(counters),
        "throttled_responses": throttled(counters),
        "dead_lettered": queues[DEAD_LETTER_QUEUE],
        "peak_rss_mb": round(sync.peak_rss_mb, 1),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "queue": QUEUES[args.queue],
        "settings": tuning,
        "messages": messages,
        "enqueue_seconds": round(enqueue_seconds, 2),
        "bulk_requests": bulk_requests,
        "records_per_bulk_request": round(records_per_request, 1),
        "dop": sync.dop,
        "peak_in_flight": sync.peak_in_flight,
        "server_execution_ms": counters.get("execution_ms"),
        "app_cpu_seconds": round(sync.cpu_seconds, 1),
        "cloud_cpu_seconds": round(usage.cpu_seconds, 1),
        "cloud_peak_rss_mb": round(usage.peak_rss_mb, 1),
        "left_in_queues": {q: n for q, n in queues.items() if n and q != DEAD_LETTER_QUEUE},
        "invocations": {name: s["invocations"] for name, s in sync.function_stats.items() if s["invocations"]},
        "baseline_failures": baseline.failures,
        "limits": limits,
        "modeled": modeled_capacity(
            limits,
            cloud.admin.latency(args.environment),
            records_per_request=records_per_request or 1.0,
            dop=sync.dop or 1,
        ),
    }


# --- command line ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="records synced through the app")
    parser.add_argument("--queue", choices=sorted(QUEUES), default="records", help="records queue or bulk queue")
    parser.add_argument("--baseline-records", type=int, default=2_000, help="records of the naive baseline")
    parser.add_argument("--environment", default="contoso", help="environment the app writes to")
    parser.add_argument("--baseline-environment", default="fabrikam", help="environment of the baseline")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="cloud.json, logs")
    parser.add_argument("--timeout", type=float, default=240.0, help="give up the sync phase after SECONDS")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="app setting for the run (repeatable), e.g. PYTHON_THREADPOOL_THREAD_COUNT=8")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        tuning = parse_overrides(args.setting)  # before anything starts
    except RunnerConfigError as exc:
        raise SystemExit(str(exc)) from None
    log_to_file(args.state_dir / "bench.log", detailed=False)
    logging.getLogger("emulators.runner").setLevel(logging.WARNING)  # two lines per invocation otherwise
    say(f"bench: {args.records:,} records through {QUEUES[args.queue]} into {args.environment}; baseline "
        f"{args.baseline_records:,} single PATCHes into {args.baseline_environment}")  # fmt: skip
    with CloudProcess(args.state_dir) as cloud:
        assert cloud.admin is not None
        limits, latency = cloud.admin.limits(args.environment), cloud.admin.latency(args.environment)
        say(f"local cloud up in {cloud.startup_seconds:.1f} s (child process); limits {limits}; latency {latency}")
        overrides = {**cloud.app_settings, **(BULK_SETTINGS if args.queue == "bulk" else {}), **tuning}
        settings = Settings.from_environ({**sample_values(), **overrides})
        records = accounts(args.records, prefix="BENCH")
        messages, enqueue_seconds = enqueue(settings, records, environment=args.environment, queue=QUEUES[args.queue])
        del records
        say(f"enqueued {args.records:,} records in {messages} messages in {enqueue_seconds:.1f} s (producer helper)")
        sync = run_sync(cloud.admin, overrides, environment=args.environment, total=args.records, timeout=args.timeout)
        say(f"synced {args.records:,} records in {sync.seconds:.1f} s = {args.records / sync.seconds:,.0f} records/s")
        baseline = run_baseline(args, cloud, settings)
        queues = leftovers(settings)
        result = figures(
            args,
            cloud,
            sync,
            baseline,
            tuning=tuning,
            messages=messages,
            enqueue_seconds=enqueue_seconds,
            queues=queues,
        )
    print(json.dumps(result), flush=True)
    return 0


def run_baseline(args: argparse.Namespace, cloud: CloudProcess, settings: Settings) -> BaselineResult:
    assert cloud.admin is not None
    token = acquire_token(settings, cloud.app_settings, args.baseline_environment)
    records = accounts(args.baseline_records, prefix="BASE", seed=7)
    say(f"baseline: {len(records):,} sequential PATCH upserts into {args.baseline_environment} ...")
    result = upsert_one_by_one(cloud.org_urls[args.baseline_environment], token, records, ca_bundle=cloud.ca_bundle)
    rows = cloud.admin.counts(args.baseline_environment)[TABLE]
    say(f"baseline: {result.records:,} records in {result.seconds:.1f} s = {result.records_per_s:,.1f} records/s "
        f"({rows:,} rows; statuses {result.statuses})")  # fmt: skip
    return result


if __name__ == "__main__":
    sys.exit(main())
