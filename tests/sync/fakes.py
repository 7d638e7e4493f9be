"""In-memory fakes of the sync core's ports, for fast tests of the handlers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from shared.config.settings import EnvironmentConfig
from shared.sync.catalog import Catalog
from shared.sync.engine import SyncEngine
from shared.sync.policy import SyncPolicy
from shared.sync.ports import (
    CheckResult,
    IncomingMessage,
    Outcome,
    ProbeReport,
    RecordWrite,
    WriteResult,
)

CONTOSO = EnvironmentConfig.model_validate(
    {
        "url": "https://contoso.example",
        "tenant_id": "c0471050-0000-4000-8000-00000000c001",
        "tables": {
            "account": {"alternate_keys": [["accountnumber"]]},
            "contact": {"alternate_keys": [["emailaddress1"], ["firstname", "lastname"]]},
            "task": {},  # keys discovered at run time: any key columns pass
        },
    }
)
FABRIKAM = EnvironmentConfig.model_validate(
    {
        "url": "https://fabrikam.example",
        "tenant_id": "fab71ca0-0000-4000-8000-00000000f001",
        "tables": {"account": {"alternate_keys": [["accountnumber"]]}},
    }
)


def catalog(*names: str) -> Catalog:
    known = {"contoso": CONTOSO, "fabrikam": FABRIKAM}
    return Catalog({name: known[name] for name in names or ("contoso",)})


class FakeClock:
    def __init__(self, start: datetime = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)) -> None:
        self.wall = start
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


Decide = Callable[[str, RecordWrite], Outcome | WriteResult]


@dataclass
class FakeWriter:
    """Answers per record through `decide`; remembers every call."""

    decide: Decide = field(default=lambda env, w: Outcome.WRITTEN)
    calls: list[tuple[str, list[RecordWrite], float]] = field(default_factory=list)
    clock: FakeClock | None = None
    seconds_per_call: float = 0.0
    raises: BaseException | None = None

    def write(self, environment: str, writes: Sequence[RecordWrite], *, deadline: float) -> list[WriteResult]:
        self.calls.append((environment, list(writes), deadline))
        if self.clock is not None:
            self.clock.advance(self.seconds_per_call)
        if self.raises is not None:
            raise self.raises
        results = []
        for write in writes:
            answer = self.decide(environment, write)
            if isinstance(answer, Outcome):
                answer = WriteResult(write.ref, answer, request_id=f"req-{write.ref}")
            results.append(replace(answer, ref=write.ref))
        return results

    @property
    def written(self) -> list[RecordWrite]:
        return [w for _, writes, _ in self.calls for w in writes]


def outcome(
    kind: Outcome, status: int | None = None, code: str | None = None, message: str | None = None
) -> WriteResult:
    return WriteResult("", kind, status, code, message, "req-x")


@dataclass
class MemorySender:
    sent: list[tuple[str, str, int]] = field(default_factory=list)
    fail: bool = False

    def send(self, queue: str, text: str, *, delay_seconds: int = 0) -> str:
        if self.fail:
            raise OSError("queue unavailable")
        self.sent.append((queue, text, delay_seconds))
        return f"sent-{len(self.sent)}"

    def to(self, queue: str) -> list[dict[str, Any]]:
        return [json.loads(text) for q, text, _ in self.sent if q == queue]

    def records_to(self, queue: str) -> list[dict[str, Any]]:
        return [record for message in self.to(queue) for record in message["records"]]


@dataclass
class MemoryDeadLetters:
    texts: list[str] = field(default_factory=list)

    def put(self, entry_json: str) -> str:
        self.texts.append(entry_json)
        return f"dl-{len(self.texts)}"

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self.texts]

    def codes(self) -> list[str]:
        return [e["reason"]["code"] for e in self.entries]


@dataclass
class FakePorts:
    """The sync core's ports as in-memory fakes on one clock; tests build handlers on `engine`, then read the fakes."""

    writer: FakeWriter = field(default_factory=FakeWriter)
    clock: FakeClock = field(default_factory=FakeClock)
    dead_letters: MemoryDeadLetters = field(default_factory=MemoryDeadLetters)
    sender: MemorySender = field(default_factory=MemorySender)
    catalog: Catalog = field(default_factory=lambda: catalog("contoso"))
    policy: SyncPolicy = field(default_factory=SyncPolicy)

    def __post_init__(self) -> None:
        self.writer.clock = self.clock  # a slow writer's time passes on the handlers' clock

    @classmethod
    def answering(cls, decide: Decide | None = None, **ports: Any) -> Self:
        """Fakes whose writer answers by `decide` (default: every record written); `ports` replace the others."""
        return cls(FakeWriter(decide) if decide is not None else FakeWriter(), **ports)

    @property
    def engine(self) -> SyncEngine:
        return SyncEngine(
            writer=self.writer,
            dead_letters=self.dead_letters,
            sender=self.sender,
            clock=self.clock,
            catalog=self.catalog,
            policy=self.policy,
        )


def message(body: object, *, id: str = "m1", dequeue_count: int = 1, queue: str = "dvsync-records") -> IncomingMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return IncomingMessage(
        id=id, body=raw, dequeue_count=dequeue_count, queue=queue, inserted_on=datetime(2025, 3, 1, tzinfo=UTC)
    )


def envelope(*records: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "dataverse-sync/v1", "records": list(records)}


def account(number: str, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "table": "account",
        "key": {"accountnumber": number},
        "data": {"name": f"Account {number}"},
    }
    record.update(extra)
    return record


def contact(email: str, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"table": "contact", "key": {"emailaddress1": email}, "data": {"lastname": email}}
    if parent is not None:
        record["lookups"] = {"parentcustomerid_account": {"table": "account", "key": {"accountnumber": parent}}}
    record.update(extra)
    return record


@dataclass
class FakeBulkSource:
    """A bulk queue: messages become invisible when received, visible again when released."""

    queue: str = "dvsync-bulk"
    visible: list[IncomingMessage] = field(default_factory=list)
    invisible: dict[str, IncomingMessage] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    released: list[tuple[str, int]] = field(default_factory=list)
    receive_calls: int = 0

    def put(self, body: object, *, id: str, dequeue_count: int = 0, minute: int = 0) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.visible.append(
            IncomingMessage(id, raw, dequeue_count, self.queue, datetime(2025, 3, 1, 11, minute, tzinfo=UTC))
        )

    def receive(self, max_messages: int, *, visibility_timeout_seconds: int) -> list[IncomingMessage]:
        self.receive_calls += 1
        taken, self.visible = self.visible[:max_messages], self.visible[max_messages:]
        out = []
        for m in taken:
            received = replace(m, dequeue_count=m.dequeue_count + 1, receipt=f"pop-{m.id}")
            self.invisible[m.id] = received
            out.append(received)
        return out

    def delete(self, message: IncomingMessage) -> None:
        assert message.receipt is not None
        del self.invisible[message.id]
        self.deleted.append(message.id)

    def release(self, message: IncomingMessage, *, delay_seconds: int) -> None:
        self.visible.append(self.invisible.pop(message.id))
        self.released.append((message.id, delay_seconds))


@dataclass
class FakeDepth:
    depths: dict[str, int] = field(default_factory=dict)
    fail: bool = False

    def approximate_count(self, queue: str) -> int:
        if self.fail:
            raise OSError("storage down")
        return self.depths.get(queue, 0)


@dataclass
class FakeProbe:
    reports: dict[str, ProbeReport] = field(default_factory=dict)

    def probe(self, environment: str) -> ProbeReport:
        return self.reports[environment]


def healthy_probe(not_after: datetime) -> ProbeReport:
    ok = CheckResult(True, None, 0.01)
    return ProbeReport(not_after, "ab" * 20, ok, ok, CheckResult(True, "user-1", 0.02), "org-1")


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())
