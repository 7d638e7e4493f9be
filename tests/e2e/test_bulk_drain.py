"""The bulk queue: the drain timer (here every second) takes many small messages at once, coalesces their records
across messages, and writes them in a few bulk requests; a message is deleted only once its records are settled
(written or dead-lettered), and released for a later run when they could not be."""

from __future__ import annotations

import logging

import pytest

from emulators.dataverse.faults import FaultKind, FaultRule
from shared.queues.names import BULK_QUEUE
from tests.e2e.conftest import Pipeline, account, contact, envelope, events, wait_until

pytestmark = [pytest.mark.cloud, pytest.mark.azurite]


def test_many_small_messages_become_a_few_bulk_requests(pipeline: Pipeline, caplog: pytest.LogCaptureFixture):
    account_messages, contact_messages, per_message = 40, 20, 5
    for m in range(account_messages):
        pipeline.send(envelope(*(account(f"B-{m}-{i}") for i in range(per_message))), queue=BULK_QUEUE)
    for m in range(contact_messages):  # each contact looks up an account sent in another message
        contacts = (contact(f"b{m}.{i}@contoso.com", parent=f"B-{m}-{i}") for i in range(per_message))
        pipeline.send(envelope(*contacts), queue=BULK_QUEUE)
    # The same row in two messages: coalesced across messages, the higher sequence wins.
    pipeline.send({**account("B-0-0", name="newer"), "sequence": 2}, queue=BULK_QUEUE)
    pipeline.send({**account("B-0-0", name="older"), "sequence": 1}, queue=BULK_QUEUE)
    messages = account_messages + contact_messages + 2
    records = (account_messages + contact_messages) * per_message

    contoso = pipeline.org("contoso")
    with caplog.at_level(logging.INFO, logger="dataverse_sync"), pipeline.running():
        wait_until(lambda: pipeline.depth(BULK_QUEUE) == 0 and contoso.count("contact") == 100, timeout=30)

    assert contoso.count("account") == account_messages * per_message
    assert contoso.row("account", accountnumber="B-0-0")["name"] == "newer"  # type: ignore[index]
    child = contoso.row("contact", emailaddress1="b7.3@contoso.com")
    assert child is not None
    assert child["parentcustomerid"] == contoso.row("account", accountnumber="B-7-3")["accountid"]  # type: ignore[index]
    bulk_requests = contoso.counters.requests["UpsertMultiple"]
    assert bulk_requests <= 4  # one per table and run (the 62 messages may straddle two runs), not one per message
    assert contoso.counters.records_written == records  # the two superseded versions were never written
    drained = [event for event in events(caplog, "bulk.drained") if event["messages"]]
    assert sum(int(event["messages"]) for event in drained) == messages
    assert sum(int(event["deleted"]) for event in drained) == messages
    assert sum(int(event["superseded"]) for event in drained) == 2
    assert pipeline.dead_letters() == []
    print(f"\nbulk drain: {messages} messages, {records + 2} records -> {bulk_requests} UpsertMultiple requests "
          f"in {len(drained)} run(s)")  # fmt: skip


def test_messages_are_deleted_only_after_their_records_are_written(pipeline: Pipeline):
    contoso = pipeline.org("contoso")
    contoso.add_fault(FaultRule(kind=FaultKind.SLOW, count=1, path="UpsertMultiple", delay_seconds=1.5))
    for m in range(10):
        pipeline.send(envelope(*(account(f"S-{m}-{i}") for i in range(3))), queue=BULK_QUEUE)

    with pipeline.running():
        wait_until(lambda: contoso.counters.faults["slow"] == 1)  # the drain's bulk request is at the server
        assert contoso.count("account") == 0
        assert pipeline.depth(BULK_QUEUE) == 10  # taken (invisible), not deleted
        wait_until(lambda: pipeline.depth(BULK_QUEUE) == 0, timeout=20)
        assert contoso.count("account") == 30  # deleted once written


def test_messages_whose_records_failed_transiently_are_released_and_written_later(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
):
    contoso = pipeline.org("contoso")
    # The first bulk request meets an outage announcing 30 s: longer than the run's budget, so the run gives up.
    contoso.add_fault(FaultRule(kind=FaultKind.SERVICE_UNAVAILABLE, count=1, path="UpsertMultiple", retry_after=30))
    for m in range(6):
        pipeline.send(envelope(*(account(f"U-{m}-{i}") for i in range(4))), queue=BULK_QUEUE)

    with caplog.at_level(logging.INFO, logger="dataverse_sync"), pipeline.running():
        wait_until(lambda: pipeline.depth(BULK_QUEUE) == 0 and contoso.count("account") == 24, timeout=30)

    runs = [event for event in events(caplog, "bulk.drained") if event["messages"]]
    assert (runs[0]["released"], runs[0]["deleted"], runs[0]["written"]) == (6, 0, 0)
    assert sum(int(run["deleted"]) for run in runs) == 6
    assert contoso.counters.records_written == 24
    assert pipeline.dead_letters() == []
