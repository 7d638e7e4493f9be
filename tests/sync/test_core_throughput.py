"""How fast the pure core is (parse, validate, plan, settle) with an instant writer: printed, not asserted.

The sync is bound by Dataverse, not by this; the figure shows how much CPU the core takes per record.
"""

from __future__ import annotations

import json
import time

from shared.queues.producer import pack_texts
from shared.sync import BulkDrain, RecordsHandler, SyncPolicy
from tests.sync.fakes import FakeBulkSource, FakePorts, account, contact, message

RECORDS = 20_000


def full_messages() -> list[str]:
    records = []
    for i in range(RECORDS // 2):
        records.append(json.dumps(account(f"ACC-{i}", data={"name": f"Account {i}", "numberofemployees": i})))
        records.append(json.dumps(contact(f"c{i}@example.com", parent=f"ACC-{i}")))
    return [text for _, _, text in pack_texts(records)]


def test_records_handler_core_throughput(capsys):
    texts = full_messages()
    handler = RecordsHandler(FakePorts().engine)
    started = time.perf_counter()
    written = sum(handler.handle(message(t.encode(), id=f"m{i}")).tally.written for i, t in enumerate(texts))
    seconds = time.perf_counter() - started
    assert written == RECORDS
    with capsys.disabled():
        print(f"\n[measure] records handler, instant writer: {RECORDS} records in {len(texts)} messages, "
              f"{seconds:.2f} s, {RECORDS / seconds:,.0f} records/s")  # fmt: skip


def test_bulk_drain_core_throughput(capsys):
    source = FakeBulkSource()
    for i in range(RECORDS // 4):  # many small messages of 4 records
        batch = [account(f"ACC-{i}"), contact(f"c{i}@x", parent=f"ACC-{i}"), account(f"B-{i}"), account(f"ACC-{i}")]
        source.put({"schema": "dataverse-sync/v1", "records": batch}, id=f"m{i}")
    ports = FakePorts(policy=SyncPolicy(bulk_drain_max_records=RECORDS))
    writer, drain = ports.writer, BulkDrain(ports.engine, source)
    started = time.perf_counter()
    report = drain.run()
    seconds = time.perf_counter() - started
    assert report.tally.records == RECORDS
    assert report.tally.superseded == RECORDS // 4
    assert len(source.deleted) == RECORDS // 4
    with capsys.disabled():
        print(f"\n[measure] bulk drain, instant writer: {RECORDS} records in {RECORDS // 4} messages, "
              f"{seconds:.2f} s, {RECORDS / seconds:,.0f} records/s, {len(writer.calls)} writer calls")  # fmt: skip
