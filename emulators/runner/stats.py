"""Per-function counters the runner keeps (the `host.stats` snapshot)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class FunctionStats:
    invocations: int = 0  # calls of the function (each retry counts)
    successes: int = 0
    failures: int = 0
    poisoned: int = 0  # messages moved to <queue>-poison (after failures, over the dequeue count, undecodable)
    timer_runs: int = 0  # schedule occurrences fired (a run with retries is one run)
    abandoned: int = 0  # invocations still running when the host stopped (their messages were released)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class StatsBook:
    def __init__(self, names: list[str]) -> None:
        self._stats = {name: FunctionStats() for name in names}
        self._lock = threading.Lock()

    def add(self, name: str, **increments: int) -> None:
        with self._lock:
            current = self._stats[name]
            self._stats[name] = replace(
                current, **{key: getattr(current, key) + value for key, value in increments.items()}
            )

    def snapshot(self) -> dict[str, FunctionStats]:
        with self._lock:
            return dict(self._stats)
