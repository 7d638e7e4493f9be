"""Service protection limits (429 + Retry-After) are survived: every record lands, and lands once.

Dataverse answers 429 with one of three codes (PAD/api-limits.md: number of requests 0x80072322, combined
execution time 0x80072321, concurrent requests 0x80072326) and a Retry-After; a throttled request is not
executed, so `records_written` counts each record exactly once when nothing is written twice.
"""

from __future__ import annotations

import time

import pytest

from emulators.dataverse.faults import FaultKind, FaultRule
from tests.e2e.conftest import Pipeline, account, contact, envelope

pytestmark = [pytest.mark.cloud, pytest.mark.azurite]

LIMIT_CODES = ("0x80072322", "0x80072321", "0x80072326")


def test_each_limit_code_with_retry_after_is_waited_out_and_every_record_lands_once(pipeline: Pipeline):
    contoso = pipeline.org("contoso")
    for code in LIMIT_CODES:  # the next three bulk requests: one 429 of each kind, Retry-After 1 s
        contoso.add_fault(FaultRule(kind=FaultKind.THROTTLE, count=1, path="UpsertMultiple", limit_code=code))
    records = [account(f"T-{i}") for i in range(20)] + [
        contact(f"t{i}@contoso.com", parent=f"T-{i}") for i in range(10)
    ]
    pipeline.send(envelope(*records))

    started = time.perf_counter()
    host = pipeline.run_until_idle()
    seconds = time.perf_counter() - started

    assert dict(contoso.counters.throttled) == dict.fromkeys(LIMIT_CODES, 1)
    assert (contoso.count("account"), contoso.count("contact")) == (20, 10)
    assert contoso.counters.records_written == 30  # none written twice
    assert pipeline.dead_letters() == []
    stats = host.stats["sync_records"]
    assert (stats.invocations, stats.failures) == (1, 0)  # survived within the delivery, no host retry needed
    print(f"\n3 throttled responses (Retry-After 1 s each) survived; run took {seconds:.1f} s")


def test_a_real_request_limit_trips_and_every_record_still_lands_once(pipeline: Pipeline):
    contoso = pipeline.org("contoso")
    contoso.set_limits(requests=4, window_seconds=1.0)  # 4 requests per second for the application user
    messages = 8
    for m in range(messages):
        pipeline.send(envelope(*(account(f"R-{m}-{i}") for i in range(10))))

    pipeline.run_until_idle(timeout=60)

    throttled = dict(contoso.counters.throttled)
    print(f"\nrequest limit 4/s: {throttled}, requests {dict(contoso.counters.requests)}")
    assert throttled.get("0x80072322", 0) >= 1  # the limit really tripped
    assert contoso.count("account") == messages * 10
    assert contoso.counters.records_written == messages * 10
    assert pipeline.dead_letters() == []
    assert set(pipeline.queue_depths().values()) == {0}
