"""Helpers for the demo's pure parts: records as the producer helper parses them, rows as the emulator stores them,
dead-letter entries as the handlers write them. Nothing here starts a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from emulators import seed
from emulators.cloud import sample_values
from emulators.demo.expectations import SentRecord
from shared.config.settings import EnvironmentConfig
from shared.queues.producer import prepare
from shared.sync.catalog import Catalog
from shared.sync.deadletter import DeadLetter, Reason, Source, new_entry
from shared.sync.ports import Outcome, WriteResult
from shared.sync.problems import ReasonKind


def demo_catalog() -> Catalog:
    """contoso and fabrikam with the sample's tables, as the local cloud configures them."""
    template = json.loads(sample_values()["DATAVERSE_ENVIRONMENTS"])["contoso"]
    environments = {
        name: EnvironmentConfig.model_validate({**template, "url": f"https://{name}.example", "tenant_id": tenant})
        for name, tenant in seed.ORGS.items()
    }
    return Catalog(environments)


def sent(records: list[dict[str, Any]], *, environment: str = "contoso", messages: list[int] | None = None):
    """The records as sent, each in message 0 unless `messages` says otherwise."""
    prepared = prepare(records, demo_catalog(), environment=environment)
    numbers = messages or [0] * len(records)
    return [SentRecord(record, number) for record, number in zip(prepared.records, numbers, strict=True)]


def account(number: str, *, parent: str | None = None, **data: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"table": "account", "key": {"accountnumber": number}, "data": {"name": number, **data}}
    if parent:
        record["lookups"] = {"parentaccountid": {"table": "account", "key": {"accountnumber": parent}}}
    return record


def contact(email: str, *, parent: str, sequence: int | None = None, **data: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "table": "contact",
        "key": {"emailaddress1": email},
        "data": {"lastname": "Lee", **data},
        "lookups": {"parentcustomerid_account": {"table": "account", "key": {"accountnumber": parent}}},
    }
    if sequence is not None:
        record["sequence"] = sequence
    return record


def dead_letter(
    record: dict[str, Any] | None,
    kind: ReasonKind,
    code: str,
    *,
    environment: str | None = "contoso",
    message_id: str = "m-1",
    dataverse_code: str | None = None,
) -> DeadLetter:
    result = WriteResult("r", Outcome.PERMANENT, 400, dataverse_code, "refused") if dataverse_code else None
    return new_entry(
        reason=Reason(kind, code, f"{code} happened"),
        source=Source("dvsync-records", message_id, 1),
        now=datetime(2025, 3, 1, tzinfo=UTC),
        record=record,
        environment=environment if record else None,
        table=record["table"] if record else None,
        dataverse=result,
    )
