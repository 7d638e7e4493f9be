"""`python -m shared` — operator commands: enqueue, deadletter list|show|replay|purge, health.

Exit codes: 0 done (healthy); 1 failed (a send failed, the environment is unhealthy); 2 bad input or usage
(nothing was sent); 3 not available yet (health without an environment probe wired in shared/bootstrap.py).
Settings come from the environment (`Settings.from_environ`), completed by `--settings local.settings.json`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from shared.config.settings import ConfigError, EnvironmentConfig, Settings
from shared.queues.adapters import QueueAdapters
from shared.queues.deadletter_store import FILTER_KEYS, AnyOf, EntryFilter, Selection, StoredEntry
from shared.queues.names import BULK_QUEUE, RECORDS_QUEUE
from shared.queues.producer import (
    InvalidRecords,
    PartialSendError,
    PreparedRecords,
    RecordError,
    RecordProducer,
    prepare,
)
from shared.sync.catalog import Catalog
from shared.sync.clock import SystemClock
from shared.sync.health_check import HealthCheck, HealthReport
from shared.sync.policy import SyncPolicy
from shared.sync.ports import EnvironmentProbe

from .record_files import FileProblem, FileRecords, RecordDefaults, column_for, read_records
from .settings_file import load_settings

OK, FAILED, USAGE, NOT_WIRED = 0, 1, 2, 3
MAX_ERRORS_SHOWN = 20
PROBE_FACTORY = "shared.bootstrap:build_environment_probe"
"""Where `health` finds the EnvironmentProbe: a function (settings) -> EnvironmentProbe, or None if not there."""


@dataclass
class Console:
    out: TextIO
    err: TextIO
    ask: Callable[[str], str]

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def warn(self, text: str) -> None:
        print(text, file=self.err)


@dataclass
class Context:
    settings: Settings
    console: Console
    adapters_factory: Callable[[Settings], QueueAdapters]
    probe_factory: Callable[[Settings], EnvironmentProbe] | None = None  # None: find_probe_factory()
    _adapters: QueueAdapters | None = None

    @property
    def adapters(self) -> QueueAdapters:
        if self._adapters is None:
            self._adapters = self.adapters_factory(self.settings)
        return self._adapters


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: dict[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    ask: Callable[[str], str] = input,
    adapters_factory: Callable[[Settings], QueueAdapters] = QueueAdapters.from_settings,
    probe_factory: Callable[[Settings], EnvironmentProbe] | None = None,
) -> int:
    console = Console(out or sys.stdout, err or sys.stderr, ask)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.settings, environ)
    except ConfigError as exc:
        console.warn(f"error: {exc}")
        return USAGE
    handler: Callable[[argparse.Namespace, Context], int] = args.handler
    return handler(args, Context(settings, console, adapters_factory, probe_factory))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared", description="dataverse-sync operator commands")
    parser.add_argument("--settings", type=Path, help="a local.settings.json whose Values complete the environment")
    commands = parser.add_subparsers(dest="command", required=True)

    enqueue = commands.add_parser("enqueue", help="send records from a .csv or .jsonl file to the records queue")
    enqueue.add_argument("file", type=Path)
    enqueue.add_argument("--table", help="table logical name (required for CSV and flat JSONL rows)")
    enqueue.add_argument("--environment", help="environment name (optional when only one is configured)")
    enqueue.add_argument("--operation", choices=("upsert", "create", "update", "delete"))
    enqueue.add_argument("--key", help="key column(s), comma-separated (default: the table's alternate key)")
    enqueue.add_argument("--bulk", action="store_true", help=f"send to {BULK_QUEUE} (drained on a timer)")
    enqueue.add_argument("--empty-as-null", action="store_true", help="send empty CSV cells as null")
    enqueue.add_argument("--from-line", type=int, default=1, help="skip records before this line (resume)")
    enqueue.add_argument("--dry-run", action="store_true", help="validate the whole file, send nothing")
    enqueue.add_argument("--no-progress", action="store_true", help="no progress bar")
    enqueue.set_defaults(handler=enqueue_command)

    deadletter = commands.add_parser("deadletter", help="inspect, replay or purge dead-letter entries")
    actions = deadletter.add_subparsers(dest="action", required=True)
    filter_help = f"key=value, repeatable, all must match; keys: {', '.join(FILTER_KEYS)}"
    listing = actions.add_parser("list", help="list entries (newest last)")
    listing.add_argument("--filter", action="append", default=[], help=filter_help)
    listing.add_argument("--limit", type=int, default=None)
    listing.add_argument("--json", action="store_true", help="one JSON entry per line")
    listing.set_defaults(handler=deadletter_list)
    show = actions.add_parser("show", help="show one entry in full")
    show.add_argument("id", help="entry id or queue message id")
    show.set_defaults(handler=deadletter_show)
    replay = actions.add_parser("replay", help=f"send entries' records back to {RECORDS_QUEUE}")
    replay.add_argument("ids", nargs="*", help="entry ids or queue message ids")
    replay.add_argument("--all", action="store_true", help="every replayable entry")
    replay.add_argument("--filter", action="append", default=[], help=filter_help)
    replay.set_defaults(handler=deadletter_replay)
    purge = actions.add_parser("purge", help="delete entries (all, or those matching --filter)")
    purge.add_argument("--filter", action="append", default=[], help=filter_help)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=deadletter_purge)

    health = commands.add_parser("health", help="check an environment: certificate, token, WhoAmI, queues")
    health.add_argument("--environment", required=True)
    health.add_argument("--json", action="store_true")
    health.set_defaults(handler=health_command)
    return parser


# --- enqueue ------------------------------------------------------------------------------------------------


def enqueue_command(args: argparse.Namespace, context: Context) -> int:
    console, settings = context.console, context.settings
    environment = _environment_config(settings, args.environment)
    defaults = RecordDefaults(
        table=args.table,
        environment=args.environment,
        operation=args.operation,
        key_columns=tuple(c.strip() for c in args.key.split(",") if c.strip()) if args.key else None,
        empty_as_null=args.empty_as_null,
        from_line=args.from_line,
    )
    name = args.file.name
    try:
        found = read_records(args.file, defaults, environment)
    except FileProblem as exc:
        console.warn(f"error: {exc}")
        return USAGE
    catalog = Catalog(settings.environments)
    errors = [e.describe(name) for e in found.errors]
    prepared = None
    try:
        prepared = prepare(found.records, catalog)
    except InvalidRecords as exc:
        errors.extend(_record_error(name, found, e) for e in exc.errors)
    if errors or prepared is None:
        return _report_invalid(console, name, errors, total=len(found.records) + len(found.errors))
    queue = BULK_QUEUE if args.bulk else RECORDS_QUEUE
    if args.dry_run:
        console.say(f"{name}: {len(found.records)} records are valid; nothing sent (--dry-run)")
        return OK
    producer = RecordProducer(context.adapters.sender, catalog, queue=queue)
    return _send(console, producer, prepared, found, name, show_progress=not args.no_progress)


def _environment_config(settings: Settings, name: str | None) -> EnvironmentConfig | None:
    if name is not None:
        return settings.environments.get(name)
    return next(iter(settings.environments.values())) if len(settings.environments) == 1 else None


def _record_error(file: str, found: FileRecords, error: RecordError) -> str:
    line, path, message, code = found.lines[error.index], error.path, error.message, error.code
    column = column_for(path, found.columns) if found.columns else (path.rsplit(".", 1)[-1] if path else None)
    where = f"{file}:{line}" + (f": column {column!r}" if column else (f": {path}" if path else ""))
    return f"{where}: {message} [{code}]"


def _report_invalid(console: Console, name: str, errors: list[str], *, total: int) -> int:
    for error in errors[:MAX_ERRORS_SHOWN]:
        console.warn(error)
    if len(errors) > MAX_ERRORS_SHOWN:
        console.warn(f"... and {len(errors) - MAX_ERRORS_SHOWN} more")
    console.warn(f"{name}: {len(errors)} invalid of {total} records; nothing was sent")
    return USAGE


def _send(
    console: Console,
    producer: RecordProducer,
    prepared: PreparedRecords,
    found: FileRecords,
    name: str,
    *,
    show_progress: bool,
) -> int:
    from tqdm import tqdm  # noqa: PLC0415 - only this command draws a progress bar

    with tqdm(total=len(prepared.texts), unit="rec", disable=not show_progress, file=console.err) as bar:
        try:
            report = producer.send_prepared(prepared, progress=bar.update)
        except PartialSendError as exc:
            sent = exc.report.records
            if sent:
                console.warn(f"sent: {sent} records, lines {found.lines[0]}-{found.lines[sent - 1]} of {name}")
            console.warn(
                f"error: {exc}\nNOT sent: lines {found.lines[sent]}-{found.lines[-1]}; "
                f"resume with --from-line {found.lines[sent]}"
            )
            return FAILED
    console.say(f"sent {report.records} records from {name} in {len(report.messages)} messages to {report.queue}")
    return OK


# --- deadletter ---------------------------------------------------------------------------------------------


def _selection(console: Console, conditions: list[str]) -> EntryFilter | None:
    try:
        return EntryFilter.parse(conditions)
    except ValueError as exc:
        console.warn(f"error: {exc}")
        return None


def deadletter_list(args: argparse.Namespace, context: Context) -> int:
    selection = _selection(context.console, args.filter)
    if selection is None:
        return USAGE
    entries = context.adapters.dead_letters.select(selection, limit=args.limit)
    for stored in entries:
        context.console.say(json.dumps(_as_json(stored)) if args.json else _summary(stored))
    if not args.json:
        context.console.say(f"{len(entries)} entries")
    return OK


def deadletter_show(args: argparse.Namespace, context: Context) -> int:
    stored = context.adapters.dead_letters.find(args.id)
    if stored is None:
        context.console.warn(f"error: no dead-letter entry {args.id!r}")
        return FAILED
    context.console.say(json.dumps(_as_json(stored), indent=2, ensure_ascii=False))
    return OK


def deadletter_replay(args: argparse.Namespace, context: Context) -> int:
    console = context.console
    selection: Selection | None
    if args.ids:
        selection = AnyOf(frozenset(args.ids))
    elif args.all or args.filter:
        selection = _selection(console, args.filter)
    else:
        console.warn("error: name entry ids, or use --all or --filter")
        return USAGE
    if selection is None:
        return USAGE
    report = context.adapters.dead_letters.replay(selection, context.adapters.sender, queue=RECORDS_QUEUE)
    for entry_id, why in report.skipped:
        console.warn(f"skipped {entry_id}: {why}")
    console.say(f"replayed {len(report.replayed)} entries in {report.messages_sent} messages to {RECORDS_QUEUE}")
    if report.not_deleted:
        console.warn(f"replayed but still listed (delete them by hand): {', '.join(report.not_deleted)}")
    if report.error:
        console.warn(f"error: {report.error}; entries not replayed stay in the dead-letter queue")
        return FAILED
    return OK


def deadletter_purge(args: argparse.Namespace, context: Context) -> int:
    console = context.console
    selection = _selection(console, args.filter)
    if selection is None:
        return USAGE
    store = context.adapters.dead_letters
    count = store.approximate_count() if selection.empty else len(store.select(selection))
    if count == 0:
        console.say("nothing to purge")
        return OK
    what = "ALL" if selection.empty else "matching"
    if not args.yes:
        answer = console.ask(f"Delete {what} {count} dead-letter entries for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console.say("nothing deleted")
            return OK
    deleted = store.purge(selection)
    console.say(f"deleted {deleted} dead-letter entries")
    return OK


def _summary(stored: StoredEntry) -> str:
    entry = stored.entry
    if entry is None:
        return f"{stored.message_id}  (not a dead-letter entry: {stored.text[:60]!r})"
    where = "/".join(p for p in (entry.environment, entry.table) if p) or "-"
    message = entry.reason.message.replace("\n", " ")
    return (
        f"{entry.id}  {entry.dead_lettered_at[:19]}  {entry.reason.kind.value}/{entry.reason.code}  {where}  "
        f"{entry.ref or '-'}  {message[:80]}"
    )


def _as_json(stored: StoredEntry) -> dict[str, Any]:
    if stored.entry is None:
        return {"message_id": stored.message_id, "unreadable": stored.text}
    return {"message_id": stored.message_id, **stored.entry.to_json()}


# --- health -------------------------------------------------------------------------------------------------


def health_command(args: argparse.Namespace, context: Context) -> int:
    console, settings = context.console, context.settings
    if args.environment not in settings.environments:
        console.warn(f"error: environment {args.environment!r} is not configured ({', '.join(settings.environments)})")
        return USAGE
    factory = context.probe_factory or find_probe_factory()
    probe = factory(settings) if factory is not None else None
    check = HealthCheck(
        probe=probe,
        depth=context.adapters.depth,
        clock=SystemClock(),
        policy=SyncPolicy.from_settings(settings),
        environments=[args.environment],
    )
    report = check.run()
    if args.json:
        console.say(json.dumps(health_json(report), indent=2))
    else:
        _print_health(console, report)
    if probe is None:
        console.warn(f"environment checks not available yet: no EnvironmentProbe is wired ({PROBE_FACTORY} is missing)")
        return NOT_WIRED
    return FAILED if report.broken else OK


def find_probe_factory() -> Callable[[Settings], EnvironmentProbe] | None:
    module_name, _, attribute = PROBE_FACTORY.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None
    factory = getattr(module, attribute, None)
    return factory if callable(factory) else None


def health_json(report: HealthReport) -> dict[str, Any]:
    environments = []
    for env in report.environments:
        probe = env.probe
        environments.append(
            {
                "environment": env.environment,
                "certificate_not_after": probe.certificate_not_after.isoformat()
                if probe and probe.certificate_not_after
                else None,
                "certificate_days_left": round(env.certificate_days_left, 1)
                if env.certificate_days_left is not None
                else None,
                "certificate_ok": probe.certificate.ok if probe else None,
                "token_ok": probe.token.ok if probe else None,
                "who_am_i_ok": probe.who_am_i.ok if probe else None,
            }
        )
    return {
        "checked_at": report.checked_at,
        "healthy": report.healthy,
        "environments": environments,
        "queue_depths": report.queue_depths,
        "findings": [f.__dict__ for f in report.findings],
    }


def _print_health(console: Console, report: HealthReport) -> None:
    for env in report.environments:
        probe = env.probe
        if probe is not None:
            days = f"{env.certificate_days_left:.0f} days left" if env.certificate_days_left is not None else "unknown"
            console.say(
                f"{env.environment}: certificate {_ok(probe.certificate.ok)} ({days}), "
                f"token {_ok(probe.token.ok)}, WhoAmI {_ok(probe.who_am_i.ok)}"
            )
    for queue, depth in report.queue_depths.items():
        console.say(f"{queue}: {'unknown' if depth is None else depth} messages")
    for finding in report.findings:
        where = f"{finding.environment}: " if finding.environment else ""
        console.say(f"{finding.severity.upper()} {finding.code}: {where}{finding.message}")
    console.say("healthy" if report.healthy else f"{len(report.findings)} findings")


def _ok(passed: bool) -> str:
    return "ok" if passed else "FAILED"
