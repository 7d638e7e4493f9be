"""Table metadata discovery is single-flight: concurrent callers for one table share one EntityDefinitions request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.config.settings import EnvironmentConfig, TableConfig
from shared.dataverse.client import ClientOptions, DataverseClient
from shared.dataverse.errors import DataverseError
from shared.dataverse.metadata import MetadataCache, MetadataUnavailable, TableMetadata
from shared.dataverse.pipeline import HttpRequest, HttpResponse
from shared.sync.ports import Operation, Outcome, RecordWrite
from tests.client.fake_dataverse import FakeDataverse

CALLERS = 6
ACCOUNT = TableMetadata("account", "accounts", "accountid", [["accountnumber"]])
NOT_FOUND = DataverseError(404, "0x80060888", "Could not find a entity with name 'account'")
ARRIVAL_SECONDS = 0.2  # time for the other callers to reach get() while the first discovery is held


class HeldDiscovery:
    """A discover function that counts its calls and holds each until released."""

    def __init__(self, *answers: TableMetadata | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, table: str, deadline: float | None) -> TableMetadata:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def release_once_all_arrived(self) -> None:
        """Once the first caller is inside, give the others time to reach get(), then let the discovery answer."""
        assert self.entered.wait(10)
        time.sleep(ARRIVAL_SECONDS)
        self.release.set()


def concurrently(call: Callable[[], Any], callers: int = CALLERS, *, before_release: Callable[[], None]) -> list[Any]:
    """Run `call` in `callers` threads that start together; each result, or the exception it raised."""
    results: list[Any] = [None] * callers
    start = threading.Barrier(callers + 1)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = call()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    start.wait()
    before_release()
    for thread in threads:
        thread.join(10)
    return results


def test_concurrent_callers_for_one_table_wait_for_one_discovery() -> None:
    discovery = HeldDiscovery(ACCOUNT)
    cache = MetadataCache({}, discovery)

    results = concurrently(lambda: cache.get("account"), before_release=discovery.release_once_all_arrived)
    print(f"\n[measure] {CALLERS} concurrent callers -> {discovery.calls} EntityDefinitions request(s)")
    assert discovery.calls == 1
    assert all(result is results[0] for result in results)
    assert results[0].entity_set == "accounts"
    assert cache.get("account") is results[0]
    assert discovery.calls == 1


def test_a_failed_discovery_reaches_its_waiters_and_is_not_kept() -> None:
    discovery = HeldDiscovery(MetadataUnavailable("account", NOT_FOUND), ACCOUNT)
    cache = MetadataCache({}, discovery)

    results = concurrently(lambda: cache.get("account"), before_release=discovery.release_once_all_arrived)
    assert discovery.calls == 1
    assert all(isinstance(result, MetadataUnavailable) and result.error == NOT_FOUND for result in results)
    assert cache.get("account").entity_set == "accounts"  # the next caller asks again
    assert discovery.calls == 2


def test_a_waiter_stops_waiting_at_its_own_deadline_and_the_discovery_still_lands() -> None:
    discovery = HeldDiscovery(ACCOUNT)
    cache = MetadataCache({}, discovery)
    leader_result: list[TableMetadata] = []
    leader = threading.Thread(target=lambda: leader_result.append(cache.get("account")))
    leader.start()
    assert discovery.entered.wait(10)
    with pytest.raises(MetadataUnavailable) as waited:
        cache.get("account", deadline=time.monotonic() + 0.05)
    assert waited.value.error.is_transient
    assert "spent waiting for the metadata of 'account'" in waited.value.error.message
    discovery.release.set()
    leader.join(10)
    assert leader_result == [ACCOUNT]
    assert cache.get("account", deadline=time.monotonic()) is ACCOUNT
    assert discovery.calls == 1


def test_configured_tables_need_no_discovery() -> None:
    discovery = HeldDiscovery()
    configured = {"account": TableConfig(alternate_keys=[["accountnumber"]], entity_set="accounts", primary_id="id")}
    assert MetadataCache(configured, discovery).get("account").primary_id == "id"
    assert discovery.calls == 0


class SlowMetadata:
    """A transport that answers EntityDefinitions slowly, as a cold environment does."""

    def __init__(self, fake: FakeDataverse) -> None:
        self.fake = fake

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "EntityDefinitions" in request.url:
            time.sleep(ARRIVAL_SECONDS)
        return self.fake(request)


def test_concurrent_writes_to_an_undescribed_table_send_one_entitydefinitions_request() -> None:
    fake = FakeDataverse()
    environment = EnvironmentConfig(
        url="https://contoso.example",
        tenant_id="c0471050-0000-4000-8000-00000000c001",
        tables={"account": TableConfig(alternate_keys=[["accountnumber"]])},  # entity set etc. discovered
    )
    client = DataverseClient(
        "contoso", environment, lambda fresh: "token", ClientOptions(), transport=SlowMetadata(fake)
    )

    def write_one() -> Outcome:
        number = f"A-{threading.get_ident()}"
        write = RecordWrite(number, "account", Operation.UPSERT, {"accountnumber": number}, {"name": number})
        [result] = client.write([write], deadline=time.monotonic() + 10)
        return result.outcome

    outcomes = concurrently(write_one, before_release=lambda: None)
    discoveries = [r for r in fake.requests if r.startswith("GET EntityDefinitions")]
    print(f"\n[measure] {CALLERS} concurrent writes -> {len(discoveries)} EntityDefinitions request(s)")
    assert outcomes == [Outcome.WRITTEN] * CALLERS
    assert len(discoveries) == 1
