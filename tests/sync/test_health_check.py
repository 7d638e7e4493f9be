"""Health check: structured findings per environment and for the queues; it never raises."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.queues.names import DEAD_LETTER_QUEUE, RECORDS_POISON_QUEUE
from shared.sync import HealthCheck, SyncPolicy
from shared.sync.ports import CheckResult
from tests.sync.fakes import FakeClock, FakeDepth, FakeProbe, healthy_probe


def check(probe=None, depth=None, environments=("contoso",), warning_days=30):
    clock = FakeClock()
    health = HealthCheck(
        probe=probe,
        depth=depth if depth is not None else FakeDepth(),
        clock=clock,
        policy=SyncPolicy(certificate_warning_days=warning_days),
        environments=environments,
    )
    return health, clock


def codes(report):
    return sorted((f.code, f.severity, f.environment) for f in report.findings)


def test_a_healthy_environment_has_no_findings():
    clock = FakeClock()
    health, _ = check(FakeProbe({"contoso": healthy_probe(clock.now() + timedelta(days=200))}))
    report = health.run()
    assert report.healthy
    assert report.queue_depths == {DEAD_LETTER_QUEUE: 0, RECORDS_POISON_QUEUE: 0}
    assert round(report.environments[0].certificate_days_left or 0) == 200


def test_certificate_expiry_warns_ahead_and_is_an_error_once_past(caplog):
    clock = FakeClock()
    probe = FakeProbe({"soon": healthy_probe(clock.now() + timedelta(days=10)),
                       "gone": healthy_probe(clock.now() - timedelta(days=1))})  # fmt: skip
    health, _ = check(probe, environments=("soon", "gone"))
    with caplog.at_level(logging.WARNING, logger="dataverse_sync"):
        report = health.run()
    assert codes(report) == [("certificate_expired", "error", "gone"), ("certificate_expiring", "warning", "soon")]
    assert "health.certificate_expiring environment=soon" in caplog.text
    assert report.broken


def test_token_and_whoami_failures_are_errors_with_their_detail():
    clock = FakeClock()
    report_ = healthy_probe(clock.now() + timedelta(days=100))
    failing = type(report_)(
        report_.certificate_not_after, report_.certificate_thumbprint, report_.certificate,
        CheckResult(False, "AADSTS700027: certificate not registered"), CheckResult(False, "not attempted"),
    )  # fmt: skip
    health, _ = check(FakeProbe({"contoso": failing}))
    report = health.run()
    assert codes(report) == [("token_failed", "error", "contoso"), ("whoami_failed", "error", "contoso")]
    assert "AADSTS700027" in report.findings[0].message


def test_dead_letters_and_poison_messages_are_warnings():
    clock = FakeClock()
    depth = FakeDepth({DEAD_LETTER_QUEUE: 12, RECORDS_POISON_QUEUE: 1})
    health, _ = check(FakeProbe({"contoso": healthy_probe(clock.now() + timedelta(days=100))}), depth)
    report = health.run()
    assert codes(report) == [("dead_letters_present", "warning", None), ("poison_messages_present", "warning", None)]
    assert "about 12" in report.findings[0].message


def test_a_broken_probe_or_storage_is_reported_not_raised():
    class Exploding:
        def probe(self, environment):
            raise RuntimeError("bug")

    health, _ = check(Exploding(), FakeDepth(fail=True))
    report = health.run()
    assert codes(report) == [("probe_failed", "error", "contoso"), ("queue_unreachable", "error", None),
                             ("queue_unreachable", "error", None)]  # fmt: skip


def test_without_a_probe_the_queues_are_still_checked():
    health, _ = check(None, FakeDepth({DEAD_LETTER_QUEUE: 3}))
    report = health.run()
    assert codes(report) == [("dead_letters_present", "warning", None), ("probe_not_wired", "warning", "contoso")]
