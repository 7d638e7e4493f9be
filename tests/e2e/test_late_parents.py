"""A lookup to a parent that does not exist yet: the child is re-scheduled (DEPENDENCY_RETRY_DELAY_SECONDS, here
1 s) and lands once the parent arrived in a later message; a parent that never arrives ends, after
DEPENDENCY_RETRY_LIMIT (here 2) retries, as a `missing_parent` dead letter. Siblings are not held up."""

from __future__ import annotations

import logging

import pytest

from tests.e2e.conftest import Pipeline, account, contact, envelope, events, orderline, row_values, wait_until

pytestmark = [pytest.mark.cloud, pytest.mark.azurite]


def test_a_child_sent_before_its_parent_is_retried_and_lands(pipeline: Pipeline, caplog: pytest.LogCaptureFixture):
    children = envelope(
        contact("kid1@contoso.com", parent="LATE-1"),
        contact("kid2@contoso.com", parent="LATE-2"),
        orderline("LO-1", 1, "LATE-1"),
        account("ON-TIME"),  # a sibling without lookups is not held up
    )
    with caplog.at_level(logging.INFO, logger="dataverse_sync"), pipeline.running() as host:
        pipeline.send(children)
        wait_until(lambda: len(events(caplog, "record.parent_missing")) >= 3)  # all three children re-scheduled
        assert pipeline.org("contoso").row("account", accountnumber="ON-TIME") is not None
        pipeline.send(envelope(account("LATE-1"), account("LATE-2")))  # the parents, later
        host.run_until_idle(idle_seconds=0.5, timeout=30)

    contoso = pipeline.org("contoso")
    ids = {row["accountnumber"]: row["accountid"] for row in contoso.rows("account")}
    assert set(ids) == {"ON-TIME", "LATE-1", "LATE-2"}
    assert row_values(contoso.rows("contact"), "emailaddress1", "parentcustomerid") == {
        "kid1@contoso.com": (ids["LATE-1"],),
        "kid2@contoso.com": (ids["LATE-2"],),
    }
    [line] = contoso.rows("dvs_orderline")
    assert line["dvs_accountid"] == ids["LATE-1"]
    assert pipeline.dead_letters() == []


def test_a_parent_that_never_arrives_is_dead_lettered_as_missing(pipeline: Pipeline, caplog: pytest.LogCaptureFixture):
    orphan = contact("orphan@contoso.com", parent="NEVER-1")
    message_id = pipeline.send(envelope(account("SIBLING"), orphan))

    with caplog.at_level(logging.INFO, logger="dataverse_sync"):
        pipeline.run_until_idle()

    [entry] = pipeline.dead_letters()
    assert (entry["reason"]["kind"], entry["reason"]["code"]) == ("missing_parent", "parent_not_found")
    assert entry["record"] == orphan
    assert entry["ref"] == f"{message_id}:1"  # the same ref through every retry
    assert entry["delivery"]["dependency_attempts"] == 2  # DEPENDENCY_RETRY_LIMIT re-schedules, then given up
    assert (entry["dataverse"]["status"], entry["dataverse"]["code"]) == (404, "0x80060891")  # Dataverse's answer
    assert [event["attempt"] for event in events(caplog, "record.parent_missing")] == [1, 2]
    assert len(events(caplog, "message.done")) == 3  # the producer's message and two re-scheduled ones
    assert {row["accountnumber"] for row in pipeline.org("contoso").rows("account")} == {"SIBLING"}
    assert pipeline.org("contoso").count("contact") == 0
