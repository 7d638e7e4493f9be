"""At-least-once delivery changes nothing: the same message twice, or a message delivered again after the worker
died mid-way (after Dataverse committed the write, before the host completed the message), leaves the same rows
with the same values and ids. Upserts by alternate key are idempotent (docs/operations.md#retries)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from emulators.dataverse.faults import FaultKind, FaultRule
from shared.queues.names import RECORDS_QUEUE
from tests.e2e.conftest import Pipeline, account, contact, envelope, events, orderline, wait_until

pytestmark = [pytest.mark.cloud, pytest.mark.azurite]

SERVER_MAINTAINED = {"versionnumber", "modifiedon", "modifiedby", "modifiedonbehalfby", "createdon", "createdby",
                     "createdonbehalfby", "ownerid"}  # fmt: skip
TABLES = ("account", "contact", "dvs_orderline")


def snapshot(pipeline: Pipeline) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables, ids included, without the columns Dataverse itself maintains."""
    org = pipeline.org("contoso")
    return {
        table: sorted(
            ({k: v for k, v in row.items() if k not in SERVER_MAINTAINED} for row in org.rows(table)),
            key=lambda row: sorted((k, str(v)) for k, v in row.items()),
        )
        for table in TABLES
    }


MESSAGE = envelope(
    *(account(f"D-{i}", numberofemployees=10 * i, description=f"row {i}") for i in range(5)),
    *(contact(f"d{i}@contoso.com", parent=f"D-{i}", firstname=f"D{i}") for i in range(3)),
    orderline("DO-1", 1, "D-0", dvs_quantity=3),
)


def test_the_same_message_twice_at_once_and_again_later_changes_nothing(pipeline: Pipeline):
    pipeline.send(MESSAGE)
    pipeline.send(MESSAGE)  # a producer retrying a send it thought had failed
    pipeline.run_until_idle()
    first = snapshot(pipeline)
    assert {table: len(rows) for table, rows in first.items()} == {"account": 5, "contact": 3, "dvs_orderline": 1}
    assert {row["accountnumber"]: row["numberofemployees"] for row in first["account"]} == {
        f"D-{i}": 10 * i for i in range(5)
    }

    pipeline.send(MESSAGE)
    host = pipeline.run_until_idle()

    assert snapshot(pipeline) == first  # same rows, same ids, same values
    assert pipeline.dead_letters() == []
    assert host.stats["sync_records"].successes == 1


def test_a_message_delivered_again_after_a_crash_mid_way_changes_nothing(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
):
    contoso = pipeline.org("contoso")
    # The first bulk request is held 1.5 s at the server: the worker dies while it is in flight.
    contoso.add_fault(FaultRule(kind=FaultKind.SLOW, count=1, path="UpsertMultiple", delay_seconds=1.5))
    pipeline.send(envelope(*(account(f"K-{i}", description=f"crash {i}") for i in range(6))))

    with pipeline.running() as host:
        wait_until(lambda: contoso.counters.faults["slow"] == 1)
        host.stop(grace=0)  # the worker is gone: the message is not completed, and shows again at once
    wait_until(lambda: contoso.count("account") == 6)  # Dataverse committed the write all the same
    assert pipeline.depth(RECORDS_QUEUE) == 1
    assert host.stats["sync_records"].abandoned == 1
    after_crash = snapshot(pipeline)

    with caplog.at_level(logging.INFO, logger="dataverse_sync"):
        again = pipeline.run_until_idle()

    assert snapshot(pipeline) == after_crash
    assert pipeline.depth(RECORDS_QUEUE) == 0
    assert pipeline.dead_letters() == []
    assert again.stats["sync_records"].successes == 1
    # The abandoned first invocation may still finish while this run goes on (a Python thread cannot be
    # killed): its message.done has dequeue_count 1 and its completion no longer deletes the message.
    redelivered = [done for done in events(caplog, "message.done") if done["dequeue_count"] == 2]
    assert [(d["written"], d["outcome"]) for d in redelivered] == [(6, "completed")]


def test_a_write_whose_response_was_lost_is_sent_again_and_changes_nothing(pipeline: Pipeline):
    contoso = pipeline.org("contoso")
    # Twice, Dataverse executes the bulk upsert and the connection drops before the answer.
    contoso.add_fault(FaultRule(kind=FaultKind.RESET_AFTER, count=2, path="UpsertMultiple"))
    pipeline.send(envelope(*(account(f"L-{i}", description=f"lost {i}") for i in range(4))))

    host = pipeline.run_until_idle()

    assert contoso.counters.faults["reset_after"] == 2
    assert contoso.counters.records_written == 3 * 4  # executed three times in all...
    rows = {row["accountnumber"]: row["description"] for row in contoso.rows("account")}
    assert rows == {f"L-{i}": f"lost {i}" for i in range(4)}  # ...one row each, as sent
    assert pipeline.dead_letters() == []
    assert (host.stats["sync_records"].successes, host.stats["sync_records"].failures) == (1, 0)
