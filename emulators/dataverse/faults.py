"""Scripted or random faults per environment, for resilience tests and benchmarks.

A rule fires on the next `count` matching requests, or on each matching request with probability `rate`;
`method` and `path` (a regular expression searched in the request path) narrow what matches. Kinds:

- "503" / "502": a gateway error with a Web API-shaped body; with `retry_after`, a `Retry-After` header saying how
  long the service expects to be unavailable (RFC 9110 §10.2.3: a server MAY send it with 503);
- "reset": the connection is aborted without any response (TCP reset);
- "reset_after": the request is executed (and committed), then the connection is aborted instead of answering:
  the response is lost, as when a gateway or the network fails after the server did the work;
- "slow": the response is delayed by `delay_seconds`, then the request is served normally;
- "expired_token": 401 as for an expired bearer token;
- "429": a service protection error with the chosen `limit_code` and `retry_after` seconds.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from emulators.dataverse import errors


class FaultKind(StrEnum):
    SERVICE_UNAVAILABLE = "503"
    BAD_GATEWAY = "502"
    RESET = "reset"
    RESET_AFTER = "reset_after"
    SLOW = "slow"
    EXPIRED_TOKEN = "expired_token"
    THROTTLE = "429"


@dataclass
class FaultRule:
    kind: FaultKind
    count: int | None = None  # fire on the next N matching requests (None: use rate)
    rate: float | None = None  # probability per matching request
    method: str | None = None
    path: str | None = None
    delay_seconds: float = 1.0  # for "slow"
    limit_code: str = errors.THROTTLE_REQUESTS  # for "429"
    retry_after: int | None = None  # "429": Retry-After seconds (1 when unset); "502"/"503": sent only when set
    _pattern: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.kind = FaultKind(self.kind)
        if (self.count is None) == (self.rate is None):
            raise ValueError("a fault rule needs exactly one of count or rate")
        if self.limit_code not in errors.THROTTLE_MESSAGES:
            raise ValueError(f"limit_code must be one of {sorted(errors.THROTTLE_MESSAGES)}")
        self._pattern = re.compile(self.path) if self.path else None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return self._pattern is None or self._pattern.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class FiredFaults:
    delay_seconds: float = 0.0
    terminal: FaultRule | None = None  # the fault that replaces the normal answer, if any


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = []
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not cryptography

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def clear(self) -> None:
        self.rules.clear()

    def fire(self, method: str, path: str) -> FiredFaults:
        if not self.rules:
            return FiredFaults()
        delay = 0.0
        terminal: FaultRule | None = None
        for rule in list(self.rules):
            if not rule.matches(method, path) or (terminal is not None and rule.kind is not FaultKind.SLOW):
                continue
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
            elif self._random.random() >= (rule.rate or 0.0):
                continue
            if rule.kind is FaultKind.SLOW:
                delay += rule.delay_seconds
            else:
                terminal = rule
        return FiredFaults(delay, terminal)
