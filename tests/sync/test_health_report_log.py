"""The health check logs what it saw per environment (certificate expiry, token, WhoAmI) even when all is well,
and the queue depths in its summary: the daily record an operator reads, not only the findings."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.sync import HealthCheck, SyncPolicy
from tests.sync.fakes import FakeClock, FakeDepth, FakeProbe, healthy_probe


def _events(caplog, name):
    return [r.dvsync for r in caplog.records if getattr(r, "dvsync_event", None) == name]


def test_a_healthy_run_still_logs_the_certificate_expiry_token_and_whoami(caplog):
    clock = FakeClock()
    not_after = clock.now() + timedelta(days=200)
    health = HealthCheck(probe=FakeProbe({"contoso": healthy_probe(not_after)}), depth=FakeDepth(), clock=clock,
                         policy=SyncPolicy(), environments=["contoso"])  # fmt: skip
    with caplog.at_level(logging.INFO, logger="dataverse_sync"):
        assert health.run().healthy
    [seen] = _events(caplog, "health.environment")
    assert seen["environment"] == "contoso"
    assert (seen["certificate_ok"], seen["token_ok"], seen["whoami_ok"]) == (True, True, True)
    assert (seen["certificate_days_left"], seen["certificate_not_after"]) == (200.0, not_after.isoformat())
    [done] = _events(caplog, "health.done")
    assert (done["healthy"], done["dead_letters"], done["poison_messages"]) == (True, 0, 0)
