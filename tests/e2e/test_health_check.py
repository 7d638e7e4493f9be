"""The health-check timer, through the runner, against the real identity chain: it logs a structured report per
environment (certificate expiry read from Key Vault, token, WhoAmI), warns ahead of the certificate's expiry,
reports an environment whose WhoAmI fails, and warns about dead letters waiting for an operator."""

from __future__ import annotations

import logging

import pytest

from emulators import seed
from emulators.dataverse.faults import FaultKind, FaultRule
from tests.e2e.conftest import Pipeline, events, wait_until

pytestmark = [pytest.mark.cloud, pytest.mark.azurite]


def test_the_health_timer_logs_its_report_and_warns(pipeline: Pipeline, caplog: pytest.LogCaptureFixture):
    pipeline.send("this is not JSON")  # becomes a dead letter: the health check must warn about it
    pipeline.run_until_idle()
    assert len(pipeline.dead_letters()) == 1
    # fabrikam's WhoAmI meets an outage (503, Retry-After beyond the probe's deadline): reported, not raised.
    fault = FaultRule(kind=FaultKind.SERVICE_UNAVAILABLE, rate=1.0, path="WhoAmI", retry_after=120)
    pipeline.org("fabrikam").add_fault(fault)

    settings = {"HEALTH_CHECK_SCHEDULE": "* * * * * *", "CERT_EXPIRY_WARNING_DAYS": "365"}  # the cert has 365 days
    with caplog.at_level(logging.INFO, logger="dataverse_sync"), pipeline.running(**settings) as host:
        wait_until(lambda: events(caplog, "health.done"), timeout=15)
    assert host.stats["health_check"].failures == 0

    report = {event["environment"]: event for event in events(caplog, "health.environment")}
    contoso, fabrikam = report["contoso"], report["fabrikam"]
    not_after = pipeline.cloud.app_certificate.not_after.isoformat()
    assert (contoso["certificate_ok"], contoso["certificate_not_after"]) == (True, not_after)
    assert 364 <= contoso["certificate_days_left"] <= 365
    assert contoso["certificate_thumbprint"] == pipeline.cloud.app_certificate.thumbprint_hex
    assert (contoso["token_ok"], contoso["whoami_ok"]) == (True, True)
    assert contoso["organization_id"] == pipeline.org("contoso").organization_id
    assert contoso["user_id"] == pipeline.org("contoso").app_users[seed.DATAVERSE_APP_CLIENT_ID].systemuser_id
    assert (fabrikam["token_ok"], fabrikam["whoami_ok"]) == (True, False)

    findings = {(r.dvsync_event, r.dvsync.get("environment"), r.levelname) for r in caplog.records  # type: ignore[attr-defined]
                if getattr(r, "dvsync_event", "").startswith("health.") and r.levelno >= logging.WARNING}  # fmt: skip
    assert findings >= {
        ("health.certificate_expiring", "contoso", "WARNING"),
        ("health.certificate_expiring", "fabrikam", "WARNING"),
        ("health.whoami_failed", "fabrikam", "ERROR"),
        ("health.dead_letters_present", None, "WARNING"),
    }
    whoami = next(e for e in events(caplog, "health.whoami_failed") if e["environment"] == "fabrikam")
    assert "Service Unavailable" in whoami["reason"]  # the cause, from Dataverse's answer
    done = events(caplog, "health.done")[0]
    assert (done["healthy"], done["environments"], done["dead_letters"]) == (False, 2, 1)
