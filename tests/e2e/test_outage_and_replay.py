"""A Dataverse outage through the real pipeline: deliveries fail, the records handler writes a poison envelope on
the last allowed attempt (maxDequeueCount 3, read by host and handler alike), the triage function re-queues it
(POISON_REQUEUE_LIMIT 1), and then dead-letters every record as `retries_exhausted`. After the outage, an operator
replays the dead letters with the CLI and every record lands. An outage that ends while the message waits in the
re-queue heals without anyone.

The outage is a 503 for every request that announces its length (`Retry-After: 30`, longer than the 10 s budget
of a delivery), so each delivery gives up at once instead of backing off for its whole budget.
"""

from __future__ import annotations

import logging

import pytest

from emulators.dataverse.faults import FaultKind, FaultRule
from tests.e2e.conftest import Pipeline, account, contact, envelope, events, row_values, wait_until

pytestmark = [pytest.mark.cloud, pytest.mark.azurite]


def outage() -> FaultRule:
    """503 for every request, announcing 30 s of unavailability."""
    return FaultRule(kind=FaultKind.SERVICE_UNAVAILABLE, rate=1.0, retry_after=30)


def test_an_outage_longer_than_every_retry_ends_in_dead_letters_that_replay_home(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
):
    records = [
        *(contact(f"p{i}@contoso.com", parent=f"OUT-{i}") for i in range(3)),
        *(account(f"OUT-{i}", numberofemployees=i) for i in range(5)),
    ]
    pipeline.org("contoso").add_fault(outage())
    message_id = pipeline.send(envelope(*records))
    pipeline.send(account("FAB-1", environment="fabrikam"))  # the other environment is up meanwhile

    with caplog.at_level(logging.INFO, logger="dataverse_sync"):
        host = pipeline.run_until_idle()

    assert pipeline.org("contoso").counts() == {"account": 0, "contact": 0, "dvs_orderline": 0, "task": 0}
    assert pipeline.org("fabrikam").row("account", accountnumber="FAB-1") is not None
    entries = pipeline.dead_letters()
    assert sorted(entry["ref"] for entry in entries) == [f"{message_id}:{i}" for i in range(len(records))]
    for entry in entries:
        index = int(entry["ref"].rsplit(":", 1)[1])
        assert (entry["reason"]["kind"], entry["reason"]["code"]) == ("retries_exhausted", "transient_exhausted")
        assert entry["record"] == records[index]  # replayable as sent
        # Where it failed last: the re-queued message on its last allowed delivery (the ref names the producer's).
        assert (entry["source"]["queue"], entry["source"]["dequeue_count"]) == ("dvsync-records", 3)
        assert entry["dataverse"]["status"] == 503
        assert entry["delivery"]["poison_requeues"] == 1
    stats = host.stats
    # fabrikam's message, then 2 x (2 failed deliveries + 1 that writes the poison envelope, with the cause): the
    # handler knows the host's maxDequeueCount, so the host itself never poisons a bare body.
    assert (stats["sync_records"].invocations, stats["sync_records"].failures) == (1 + 6, 4)
    assert stats["sync_records"].poisoned == 0
    assert (stats["triage_poison"].invocations, stats["triage_poison"].failures) == (2, 0)
    assert len(events(caplog, "message.poisoned")) == 2
    [requeued] = events(caplog, "poison.requeued")
    assert (requeued["records"], requeued["requeue"], requeued["error_class"]) == (8, 1, "TransientWriteFailure")

    pipeline.org("contoso").clear_faults()  # the outage is over; the runner is stopped, nothing is in flight
    replay = pipeline.cli("deadletter", "replay", "--all")
    assert replay.code == 0, replay.err
    assert pipeline.dead_letters() == []

    pipeline.run_until_idle()

    contoso = pipeline.org("contoso")
    assert row_values(contoso.rows("account"), "accountnumber", "numberofemployees") == {
        f"OUT-{i}": (i,) for i in range(5)
    }
    ids = {row["accountnumber"]: row["accountid"] for row in contoso.rows("account")}
    assert row_values(contoso.rows("contact"), "emailaddress1", "parentcustomerid") == {
        f"p{i}@contoso.com": (ids[f"OUT-{i}"],) for i in range(3)
    }
    assert pipeline.dead_letters() == []
    assert set(pipeline.queue_depths().values()) == {0}


def test_an_outage_that_ends_during_the_requeue_delay_heals_without_an_operator(pipeline: Pipeline):
    pipeline.org("contoso").add_fault(outage())
    pipeline.send(envelope(*(account(f"HEAL-{i}") for i in range(3))))

    with pipeline.running(POISON_REQUEUE_DELAY_SECONDS="2") as host:
        wait_until(lambda: host.stats["triage_poison"].successes >= 1)  # poisoned once, re-queued with a delay
        pipeline.admin.clear_faults("contoso")  # on the servers' loop: safe while the runner runs
        host.run_until_idle(idle_seconds=0.5, timeout=30)

    assert {row["accountnumber"] for row in pipeline.org("contoso").rows("account")} == {"HEAL-0", "HEAL-1", "HEAL-2"}
    assert pipeline.dead_letters() == []
    assert host.stats["triage_poison"].invocations == 1
    assert pipeline.org("contoso").counters.records_written == 3
