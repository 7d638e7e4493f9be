"""`python -m shared deadletter ...` and `health` against Azurite."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from shared.queues.adapters import QueueClients
from shared.queues.deadletter_store import DeadLetterStore
from shared.queues.names import DEAD_LETTER_QUEUE, RECORDS_QUEUE
from shared.sync.deadletter import Reason, Source, new_entry
from shared.sync.problems import ReasonKind
from tests.cli.conftest import Cli
from tests.sync.fakes import FakeProbe, account, healthy_probe

pytestmark = pytest.mark.azurite


def put_entries(storage: QueueServiceClient) -> list[str]:
    store = DeadLetterStore(QueueClients(storage))
    ids = []
    for number, code, table in (("A-1", "dataverse_rejected", "account"), ("A-2", "parent_not_found", "account"),
                                ("C-1", "dataverse_rejected", "contact")):  # fmt: skip
        entry = new_entry(
            reason=Reason(ReasonKind.REJECTED, code, f"why {number}"),
            source=Source(RECORDS_QUEUE, f"msg-{number}", 1),
            now=datetime(2025, 3, 1, tzinfo=UTC),
            record=account(number) if table == "account" else {"table": "contact", "key": {"emailaddress1": number}},
            environment="contoso",
            table=table,
            ref=f"msg-{number}:0",
        )
        store.put(entry.serialize())
        ids.append(entry.id)
    return ids


def queue_texts(storage: QueueServiceClient, queue: str) -> list[dict[str, Any]]:
    return [json.loads(base64.b64decode(m.content)) for m in storage.get_queue_client(queue).peek_messages(32)]


def test_list_shows_one_line_per_entry_and_filters(cli: Cli, storage):
    ids = put_entries(storage)
    run = cli("deadletter", "list")
    assert run.code == 0
    assert run.out.count("\n") == 4
    assert ids[0] in run.out
    assert "rejected/dataverse_rejected  contoso/account  msg-A-1:0  why A-1" in run.out
    run = cli("deadletter", "list", "--filter", "code=dataverse_rejected", "--filter", "table=contact", "--json")
    [line] = run.out.splitlines()
    assert json.loads(line)["id"] == ids[2]


def test_show_prints_the_whole_entry(cli: Cli, storage):
    ids = put_entries(storage)
    run = cli("deadletter", "show", ids[1])
    assert run.code == 0
    shown = json.loads(run.out)
    assert shown["reason"]["code"] == "parent_not_found"
    assert shown["record"] == account("A-2")
    assert cli("deadletter", "show", "missing").code == 1


def test_replay_by_id_or_filter_sends_records_back_and_removes_the_entries(cli: Cli, storage):
    ids = put_entries(storage)
    run = cli("deadletter", "replay", ids[0])
    assert run.code == 0
    assert "replayed 1 entries in 1 messages to dvsync-records" in run.out
    run = cli("deadletter", "replay", "--filter", "table=contact")
    assert "replayed 1 entries" in run.out
    replayed = [r for m in queue_texts(storage, RECORDS_QUEUE) for r in m["records"]]
    assert [r["key"] for r in replayed] == [{"accountnumber": "A-1"}, {"emailaddress1": "C-1"}]
    assert [e["id"] for e in queue_texts(storage, DEAD_LETTER_QUEUE)] == [ids[1]]
    assert cli("deadletter", "replay").code == 2  # neither ids nor --all nor --filter


def test_replay_all(cli: Cli, storage):
    put_entries(storage)
    assert "replayed 3 entries" in cli("deadletter", "replay", "--all").out
    assert queue_texts(storage, DEAD_LETTER_QUEUE) == []


def test_purge_asks_first_and_yes_skips_the_question(cli: Cli, storage):
    put_entries(storage)
    cli.answers = ["n"]
    run = cli("deadletter", "purge", "--filter", "table=account")
    assert "nothing deleted" in run.out
    assert len(queue_texts(storage, DEAD_LETTER_QUEUE)) == 3
    cli.answers = ["y"]
    assert "deleted 2 dead-letter entries" in cli("deadletter", "purge", "--filter", "table=account").out
    assert "deleted 1 dead-letter entries" in cli("deadletter", "purge", "--yes").out
    assert queue_texts(storage, DEAD_LETTER_QUEUE) == []
    assert cli("deadletter", "purge", "--filter", "colour=red").code == 2


def test_health_with_a_probe_reports_and_sets_the_exit_code(cli: Cli, storage):
    put_entries(storage)
    soon = datetime.now(UTC) + timedelta(days=5)
    run = cli("health", "--environment", "contoso", probe_factory=lambda s: FakeProbe({"contoso": healthy_probe(soon)}))
    assert run.code == 0  # warnings only
    assert "contoso: certificate ok (5 days left), token ok, WhoAmI ok" in run.out
    assert "WARNING certificate_expiring: contoso:" in run.out
    assert "WARNING dead_letters_present" in run.out
    expired = datetime.now(UTC) - timedelta(days=1)
    run = cli("health", "--environment", "contoso", "--json",
              probe_factory=lambda s: FakeProbe({"contoso": healthy_probe(expired)}))  # fmt: skip
    assert run.code == 1
    report = json.loads(run.out)
    assert report["queue_depths"][DEAD_LETTER_QUEUE] == 3
    assert {f["code"] for f in report["findings"]} == {"certificate_expired", "dead_letters_present"}


def test_health_without_a_wired_probe_still_checks_the_queues(cli: Cli, storage, monkeypatch):
    monkeypatch.setattr("shared.cli.main.PROBE_FACTORY", "shared.not_a_module:build_environment_probe")
    run = cli("health", "--environment", "contoso")
    assert run.code == 3
    assert "dvsync-deadletter: 0 messages" in run.out
    assert "not available yet" in run.err
    assert cli("health", "--environment", "nowhere").code == 2
