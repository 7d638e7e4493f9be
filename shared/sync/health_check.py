"""Health check (daily timer, and `python -m shared health`): per environment and for the queues.

Per environment, through the EnvironmentProbe port (implemented by the Dataverse/identity side): can the
certificate be read from Key Vault and when does it expire (warn CERT_EXPIRY_WARNING_DAYS ahead), can a token
be acquired, does `WhoAmI` answer. For the queues: dead-letter and poison depth. Every finding is a structured
warning (code, environment, message) logged at WARNING (ERROR when something is already broken); the report is
returned for the CLI to print. A failing probe is reported, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.queues.names import DEAD_LETTER_QUEUE, RECORDS_POISON_QUEUE
from shared.sync.logs import event, logger
from shared.sync.policy import SyncPolicy
from shared.sync.ports import CheckResult, Clock, EnvironmentProbe, ProbeReport, QueueDepth

log = logger("health")


@dataclass(frozen=True)
class Finding:
    code: str  # certificate_expiring, certificate_expired, certificate_unreadable, token_failed, ...
    severity: str  # "warning" or "error"
    message: str
    environment: str | None = None


@dataclass(frozen=True)
class EnvironmentHealth:
    environment: str
    probe: ProbeReport | None
    certificate_days_left: float | None = None


@dataclass
class HealthReport:
    checked_at: str
    environments: list[EnvironmentHealth] = field(default_factory=list)
    queue_depths: dict[str, int | None] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.findings

    @property
    def broken(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


class HealthCheck:
    def __init__(
        self,
        *,
        probe: EnvironmentProbe | None,
        depth: QueueDepth | None,
        clock: Clock,
        policy: SyncPolicy,
        environments: Sequence[str],
    ) -> None:
        self.probe = probe
        self.depth = depth
        self.clock = clock
        self.policy = policy
        self.environments = list(environments)

    def run(self, environments: Sequence[str] | None = None) -> HealthReport:
        now = self.clock.now()
        report = HealthReport(checked_at=now.isoformat())
        for name in environments if environments is not None else self.environments:
            checked = self._check_environment(name, now, report.findings)
            report.environments.append(checked)
            _log_environment(checked)
        self._check_queues(report)
        for finding in report.findings:
            level = logging.ERROR if finding.severity == "error" else logging.WARNING
            event(log, level, "health." + finding.code, environment=finding.environment, reason=finding.message)
        event(
            log,
            logging.INFO,
            "health.done",
            healthy=report.healthy,
            findings=len(report.findings),
            environments=len(report.environments),
            dead_letters=report.queue_depths.get(DEAD_LETTER_QUEUE),
            poison_messages=report.queue_depths.get(RECORDS_POISON_QUEUE),
        )
        return report

    def _check_environment(self, name: str, now: datetime, findings: list[Finding]) -> EnvironmentHealth:
        if self.probe is None:
            findings.append(
                Finding("probe_not_wired", "warning", "no EnvironmentProbe is configured (shared/bootstrap.py)", name)
            )
            return EnvironmentHealth(name, None)
        try:
            probe = self.probe.probe(name)
        except Exception as exc:  # the port promises to report, not raise; a bug there must not hide the rest
            log.exception("environment probe raised for %s", name)
            findings.append(Finding("probe_failed", "error", f"the probe raised {type(exc).__name__}", name))
            return EnvironmentHealth(name, None)
        days_left = self._certificate_findings(name, probe, now, findings)
        for code, result in (("token_failed", probe.token), ("whoami_failed", probe.who_am_i)):
            if not result.ok:
                findings.append(Finding(code, "error", _detail(result), name))
        return EnvironmentHealth(name, probe, days_left)

    def _certificate_findings(
        self, name: str, probe: ProbeReport, now: datetime, findings: list[Finding]
    ) -> float | None:
        if not probe.certificate.ok:
            findings.append(Finding("certificate_unreadable", "error", _detail(probe.certificate), name))
        if probe.certificate_not_after is None:
            return None
        days_left = (probe.certificate_not_after - now).total_seconds() / 86400
        expiry = probe.certificate_not_after.isoformat()
        if days_left <= 0:
            findings.append(Finding("certificate_expired", "error", f"the certificate expired on {expiry}", name))
        elif days_left <= self.policy.certificate_warning_days:
            findings.append(
                Finding(
                    "certificate_expiring",
                    "warning",
                    f"the certificate expires in {days_left:.1f} days ({expiry}); add a new version in Key Vault",
                    name,
                )
            )
        return days_left

    def _check_queues(self, report: HealthReport) -> None:
        limits = {
            DEAD_LETTER_QUEUE: ("dead_letters_present", self.policy.dead_letter_warning_depth, "dead-letter entries"),
            RECORDS_POISON_QUEUE: ("poison_messages_present", self.policy.poison_warning_depth, "poisoned messages"),
        }
        for queue, (code, threshold, what) in limits.items():
            if self.depth is None:
                report.queue_depths[queue] = None
                continue
            try:
                count = self.depth.approximate_count(queue)
            except Exception as exc:  # storage trouble is a finding of its own
                report.queue_depths[queue] = None
                report.findings.append(Finding("queue_unreachable", "error", f"{queue}: {type(exc).__name__}"))
                continue
            report.queue_depths[queue] = count
            if count >= threshold:
                report.findings.append(
                    Finding(code, "warning", f"{queue} holds about {count} {what}; see docs/operations.md")
                )


def _log_environment(checked: EnvironmentHealth) -> None:
    """What was seen in one environment, healthy or not (INFO): the daily record of certificate expiry, token and
    WhoAmI that the findings alone would not give. The thumbprint and ids are public identifiers, not secrets."""
    probe = checked.probe
    if probe is None:
        return
    days_left = checked.certificate_days_left
    event(
        log,
        logging.INFO,
        "health.environment",
        environment=checked.environment,
        certificate_ok=probe.certificate.ok,
        certificate_not_after=probe.certificate_not_after.isoformat() if probe.certificate_not_after else None,
        certificate_days_left=round(days_left, 1) if days_left is not None else None,
        certificate_thumbprint=probe.certificate_thumbprint,
        token_ok=probe.token.ok,
        whoami_ok=probe.who_am_i.ok,
        user_id=probe.who_am_i.detail if probe.who_am_i.ok else None,
        organization_id=probe.organization_id,
    )


def _detail(result: CheckResult) -> str:
    return result.detail or "failed (no detail)"
