"""The write engine against a scripted fake transport: isolation, splitting, fallback, deadlines, ordering."""

from __future__ import annotations

import time

import pytest
from requests.structures import CaseInsensitiveDict

from shared.config.settings import EnvironmentConfig, TableConfig
from shared.dataverse.client import ClientOptions, DataverseClient
from shared.dataverse.errors import DataverseError
from shared.dataverse.pipeline import HttpResponse
from shared.dataverse.retry import RetryOptions
from shared.dataverse.writes import bulk_refused, order_groups, split_repeated_keys
from shared.sync.ports import Lookup, Operation, Outcome, RecordWrite
from tests.client.fake_dataverse import BAD, FakeDataverse

ENV = EnvironmentConfig(
    url="https://contoso.example",
    tenant_id="c0471050-0000-4000-8000-00000000c001",
    tables={
        "account": TableConfig(alternate_keys=[["accountnumber"]], entity_set="accounts", primary_id="accountid"),
        "contact": TableConfig(alternate_keys=[["emailaddress1"]], entity_set="contacts", primary_id="contactid"),
    },
)
FAST_RETRY = RetryOptions(backoff_base_seconds=0.001, backoff_cap_seconds=0.01)


def make_client(fake: FakeDataverse, **options) -> DataverseClient:
    options.setdefault("retry", FAST_RETRY)
    return DataverseClient("contoso", ENV, lambda fresh: "token", ClientOptions(**options), transport=fake)


def upserts(n: int, bad: frozenset[int] = frozenset()) -> list[RecordWrite]:
    return [
        RecordWrite(
            str(i),
            "account",
            Operation.UPSERT,
            {"accountnumber": f"A-{i}"},
            {"name": f"{BAD} {i}" if i in bad else f"n{i}"},
        )
        for i in range(n)
    ]


def outcomes(results) -> dict[str, Outcome]:
    return {r.ref: r.outcome for r in results}


def test_good_chunks_land_in_one_request_each() -> None:
    fake = FakeDataverse()
    results = make_client(fake, bulk_chunk_size=10).write(upserts(25), deadline=time.monotonic() + 10)
    assert set(outcomes(results).values()) == {Outcome.WRITTEN}
    assert [r.ref for r in results] == [str(i) for i in range(25)]
    assert fake.requests.count("POST accounts/Microsoft.Dynamics.CRM.UpsertMultiple") == 3
    assert len(fake.rows) == 25
    assert "accountnumber" not in fake.rows["A-3"] or fake.rows["A-3"]["accountnumber"] == "A-3"


def test_one_bad_record_is_isolated_and_the_rest_land() -> None:
    fake = FakeDataverse()
    results = make_client(fake, bulk_chunk_size=100, batch_size=30).write(
        upserts(100, bad=frozenset({42})), deadline=time.monotonic() + 10
    )
    by_ref = {r.ref: r for r in results}
    assert by_ref["42"].outcome is Outcome.PERMANENT
    assert by_ref["42"].code == "0x80044331"
    assert "BAD 42" in str(by_ref["42"].message)
    assert sum(r.outcome is Outcome.WRITTEN for r in results) == 99
    assert len(fake.rows) == 99
    # 100 fail together -> 10 bulk pieces of 10 -> the one failing piece as one $batch with per-record answers
    assert fake.requests.count("POST accounts/Microsoft.Dynamics.CRM.UpsertMultiple") == 11
    assert fake.requests.count("POST $batch") == 1


def test_many_bad_records_each_get_their_own_result() -> None:
    fake = FakeDataverse()
    bad = frozenset(range(3, 1000, 7))
    results = make_client(fake).write(upserts(1000, bad=bad), deadline=time.monotonic() + 10)
    assert {int(r.ref) for r in results if r.outcome is Outcome.PERMANENT} == set(bad)
    assert sum(r.outcome is Outcome.WRITTEN for r in results) == 1000 - len(bad)
    assert len(fake.rows) == 1000 - len(bad)


def test_too_large_chunks_are_halved() -> None:
    fake = FakeDataverse(max_targets=300)
    results = make_client(fake, bulk_chunk_size=1000).write(upserts(1000), deadline=time.monotonic() + 10)
    assert set(outcomes(results).values()) == {Outcome.WRITTEN}
    assert fake.requests.count("POST accounts/Microsoft.Dynamics.CRM.UpsertMultiple") == 1 + 2 + 4


def test_table_without_bulk_falls_back_to_batch_once() -> None:
    fake = FakeDataverse(bulk_supported=False)
    client = make_client(fake, bulk_chunk_size=50, batch_size=50, max_parallelism=1)
    results = client.write(upserts(200), deadline=time.monotonic() + 10)
    assert set(outcomes(results).values()) == {Outcome.WRITTEN}
    assert fake.requests.count("POST accounts/Microsoft.Dynamics.CRM.UpsertMultiple") == 1
    assert client.metadata.get("account").bulk is False
    client.write(upserts(10), deadline=time.monotonic() + 10)
    assert fake.requests.count("POST accounts/Microsoft.Dynamics.CRM.UpsertMultiple") == 1


def test_throttled_bulk_request_is_retried_after_retry_after() -> None:
    fake = FakeDataverse()
    throttled = HttpResponse.from_http(
        429,
        CaseInsensitiveDict({"Retry-After": "0.05"}),
        b'{"error":{"code":"0x80072321","message":"Combined execution time of incoming requests exceeded limit"}}',
    )
    fake.faults.extend([throttled, throttled])
    started = time.monotonic()
    results = make_client(fake, max_parallelism=1).write(upserts(5), deadline=time.monotonic() + 10)
    assert set(outcomes(results).values()) == {Outcome.WRITTEN}
    assert time.monotonic() - started >= 0.1
    assert fake.requests.count("POST accounts/Microsoft.Dynamics.CRM.UpsertMultiple") == 3


def test_throttling_beyond_the_deadline_is_transient_with_the_reason() -> None:
    fake = FakeDataverse()
    fake.faults.append(
        HttpResponse.from_http(
            429,
            CaseInsensitiveDict({"Retry-After": "30"}),
            b'{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time '
            b'window of 300 seconds."}}',
        )
    )
    results = make_client(fake).write(upserts(3), deadline=time.monotonic() + 2)
    assert set(outcomes(results).values()) == {Outcome.TRANSIENT}
    assert "requests limit" in str(results[0].message)
    assert "deadline" in str(results[0].message)
    assert results[0].status == 429


def test_connection_failures_are_retried_then_transient() -> None:
    fake = FakeDataverse()
    reset = HttpResponse.failed(DataverseError(None, None, "ConnectionError: connection reset"), maybe_delivered=True)
    fake.faults.extend([reset] * 20)
    results = make_client(fake, retry=RetryOptions(max_transient_retries=2, backoff_base_seconds=0.001)).write(
        upserts(2), deadline=time.monotonic() + 5
    )
    assert set(outcomes(results).values()) == {Outcome.TRANSIENT}
    assert "connection reset" in str(results[0].message)
    assert len(fake.requests) == 3


def test_work_not_started_by_the_deadline_is_transient() -> None:
    fake = FakeDataverse()
    results = make_client(fake).write(upserts(3), deadline=time.monotonic() - 1)
    assert set(outcomes(results).values()) == {Outcome.TRANSIENT}
    assert fake.requests == []


def test_token_failure_makes_every_record_transient_with_the_cause() -> None:
    def no_token(fresh: bool) -> str:
        raise RuntimeError("no Dataverse token for tenant c047...: AADSTS700016: Application not found")

    client = DataverseClient("contoso", ENV, no_token, ClientOptions(), transport=FakeDataverse())
    results = client.write(upserts(3), deadline=time.monotonic() + 5)
    assert {r.outcome for r in results} == {Outcome.TRANSIENT}
    assert "AADSTS700016" in str(results[0].message)


def test_unconfigured_table_and_bad_keys_are_permanent() -> None:
    fake = FakeDataverse()
    writes = [
        RecordWrite("t", "lead", Operation.UPSERT, {"x": "1"}),
        RecordWrite("k", "account", Operation.UPSERT, {"name": "wrong key column"}),
        RecordWrite("e", "account", Operation.UPSERT, {}),
        RecordWrite("ok", "account", Operation.UPSERT, {"accountnumber": "A"}),
    ]
    by_ref = {r.ref: r for r in make_client(fake).write(writes, deadline=time.monotonic() + 5)}
    assert by_ref["t"].outcome is Outcome.PERMANENT
    assert "not configured" in str(by_ref["t"].message)
    assert by_ref["k"].outcome is Outcome.PERMANENT
    assert "key in the request URI is not valid" in str(by_ref["k"].message)
    assert by_ref["e"].outcome is Outcome.PERMANENT
    assert by_ref["ok"].outcome is Outcome.WRITTEN


def test_keys_that_break_urls_are_resolved_then_written_by_id() -> None:
    fake = FakeDataverse()
    fake.rows["A/1"] = {"accountid": "11111111-1111-4111-8111-111111111111", "accountnumber": "A/1"}
    writes = [
        RecordWrite("old", "account", Operation.UPSERT, {"accountnumber": "A/1"}, {"name": "existing"}),
        RecordWrite("new", "account", Operation.UPSERT, {"accountnumber": "B&2"}, {"name": "created"}),
    ]
    results = make_client(fake).write(writes, deadline=time.monotonic() + 5)
    assert set(outcomes(results).values()) == {Outcome.WRITTEN}
    assert any(r.startswith("GET accounts") for r in fake.requests)  # resolved by $filter
    assert fake.rows["A/1"]["name"] == "existing"
    assert fake.rows["B&2"]["name"] == "created"


def test_a_create_whose_first_attempt_landed_is_not_duplicated() -> None:
    """CreateMultiple is processed but the connection drops before the answer: the retry hits the client-assigned
    ids, the records are checked by id and reported WRITTEN, and no second row exists."""
    fake = FakeDataverse(resets_after_processing=1)
    creates = [
        RecordWrite(str(i), "account", Operation.CREATE, {"accountnumber": f"C-{i}"}, {"name": f"c{i}"})
        for i in range(3)
    ]
    results = make_client(fake, max_parallelism=1).write(creates, deadline=time.monotonic() + 10)
    assert [r.outcome for r in results] == [Outcome.WRITTEN] * 3
    assert {r.message for r in results} == {"created by an earlier attempt"}
    assert len(fake.rows) == 3
    assert fake.requests.count("POST accounts/Microsoft.Dynamics.CRM.CreateMultiple") == 2


def test_a_genuine_duplicate_create_stays_permanent() -> None:
    fake = FakeDataverse()
    given = "22222222-2222-4222-8222-222222222222"
    fake.rows["OLD"] = {"accountid": given, "accountnumber": "OLD"}
    create = RecordWrite("dup", "account", Operation.CREATE, {"accountid": given}, {"name": "again"})
    result = make_client(fake).write([create], deadline=time.monotonic() + 10)[0]
    assert result.outcome is Outcome.PERMANENT
    assert result.code == "0x80040237"


def test_an_id_path_create_racing_another_writer_is_retried_not_dead_lettered() -> None:
    fake = FakeDataverse(queries_see_nothing=True)
    fake.rows["A/1"] = {"accountid": "33333333-3333-4333-8333-333333333333", "accountnumber": "A/1"}
    write = RecordWrite("r", "account", Operation.UPSERT, {"accountnumber": "A/1"}, {"name": "mine"})
    result = make_client(fake).write([write], deadline=time.monotonic() + 10)[0]
    assert result.outcome is Outcome.TRANSIENT
    assert "created concurrently" in str(result.message)
    assert result.code == "0x80060892"


def test_deletes_go_through_batch_and_missing_rows_count_as_done() -> None:
    fake = FakeDataverse()
    fake.rows["A-1"] = {"accountid": "x"}
    writes = [RecordWrite(str(i), "account", Operation.DELETE, {"accountnumber": f"A-{i}"}) for i in (1, 2)]
    results = make_client(fake).write(writes, deadline=time.monotonic() + 5)
    assert [r.outcome for r in results] == [Outcome.WRITTEN, Outcome.WRITTEN]
    assert results[1].message == "row did not exist"
    assert fake.requests == ["POST $batch"]


def test_parents_are_written_before_children() -> None:
    writes = [
        RecordWrite(
            "c",
            "contact",
            Operation.UPSERT,
            {"emailaddress1": "a@b"},
            lookups={"parentcustomerid_account": Lookup("account", {"accountnumber": "A"})},
        ),
        RecordWrite("a", "account", Operation.UPSERT, {"accountnumber": "A"}),
        RecordWrite("d", "account", Operation.DELETE, {"accountnumber": "Z"}),
    ]
    order = [key.table + ":" + key.operation for key, _ in order_groups(writes)]
    assert order == ["account:upsert", "contact:upsert", "account:delete"]


def test_repeated_keys_go_to_later_rounds() -> None:
    writes = [*upserts(3), RecordWrite("again", "account", Operation.UPSERT, {"accountnumber": "a-1"})]
    writes.append(RecordWrite("third", "account", Operation.UPSERT, {"accountnumber": "A-1"}))
    assert split_repeated_keys(list(range(5)), writes) == [[0, 1, 2], [3], [4]]


@pytest.mark.parametrize(
    ("message", "refused"),
    [
        ("The 'UpsertMultiple' message is not supported for this table.", True),
        ("Resource not found for the segment 'Microsoft.Dynamics.CRM.CreateMultiple'.", True),
        ("A validation error occurred.", False),
        ("UpsertMultiple failed: A record with matching key values already exists.", False),
    ],
)
def test_bulk_refusal_is_told_apart_from_record_errors(message: str, refused: bool) -> None:
    action = "CreateMultiple" if "Create" in message else "UpsertMultiple"
    assert bulk_refused(DataverseError(400, None, message), action) is refused
