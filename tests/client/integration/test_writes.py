"""Writes and reads against the Dataverse emulator of the local cloud, through the production objects
(DataverseEnvironments over DataverseCredentials over Key Vault via the managed identity), over real HTTPS."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest

from emulators import seed
from emulators.cloud import LocalCloud
from emulators.dataverse import AppUser, FaultKind, FaultRule, LatencyModel, Org
from emulators.dataverse.demo import BYPASS_ROLE, SYNC_ROLE, TABLE_ONLY_ROLE
from shared.config.settings import Settings
from shared.dataverse import DataverseEnvironments
from shared.sync.ports import JsonValue, Lookup, Operation, Outcome, RecordWrite, WriteResult
from tests.client.integration.conftest import build_credentials

THROTTLE_CODES = ("0x80072322", "0x80072321", "0x80072326")  # requests, execution time, concurrency (api-limits)


def upsert(ref: str, number: str, **data: JsonValue) -> RecordWrite:
    return RecordWrite(ref, "account", Operation.UPSERT, {"accountnumber": number}, {"name": f"account {ref}", **data})


def outcomes(results: list[WriteResult]) -> dict[Outcome, int]:
    counts: dict[Outcome, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return counts


def deadline(seconds: float = 60) -> float:
    return time.monotonic() + seconds


def test_end_to_end_two_tenants_two_environments(
    environments: DataverseEnvironments, orgs: dict[str, Org], settings: Settings
) -> None:
    """Managed identity -> Key Vault -> certificate -> a token per tenant -> writes to two environments."""
    for name in ("contoso", "fabrikam"):
        writes = [upsert(f"{name}-{i}", f"{name[:3].upper()}-{i}") for i in range(20)]
        writes.append(
            RecordWrite(
                f"{name}-contact",
                "contact",
                Operation.UPSERT,
                {"emailaddress1": f"dana@{name}.example"},
                {"lastname": "Dana"},
                {"parentcustomerid_account": Lookup("account", {"accountnumber": f"{name[:3].upper()}-7"})},
            )
        )
        results = environments.write(name, writes, deadline=deadline())
        assert outcomes(results) == {Outcome.WRITTEN: 21}
        org = orgs[name]
        assert org.count("account") == 20
        contact = org.row("contact", emailaddress1=f"dana@{name}.example")
        assert contact is not None
        parent = org.row("account", accountnumber=f"{name[:3].upper()}-7")
        assert parent is not None
        assert contact["parentcustomerid"] == parent["accountid"]
        report = environments.probe(name)
        assert report.certificate.ok
        assert report.token.ok
        assert report.who_am_i.ok
        assert report.organization_id == org.organization_id
    # Each environment saw only its own application user's token: rows are created by the app user of that org.
    assert orgs["contoso"].row("account", accountnumber="CON-1") is not None
    assert orgs["fabrikam"].row("account", accountnumber="CON-1") is None


def test_ten_thousand_upserts_survive_throttling_and_faults(
    environments: DataverseEnvironments, orgs: dict[str, Org]
) -> None:
    org = orgs["contoso"]
    for code in THROTTLE_CODES:
        org.add_fault(
            FaultRule(kind=FaultKind.THROTTLE, count=1, limit_code=code, retry_after=1, path="UpsertMultiple")
        )
    org.add_fault(FaultRule(kind=FaultKind.SERVICE_UNAVAILABLE, count=2, path="UpsertMultiple"))
    org.add_fault(FaultRule(kind=FaultKind.BAD_GATEWAY, count=1, path="UpsertMultiple"))
    org.add_fault(FaultRule(kind=FaultKind.RESET, count=2, path="UpsertMultiple"))
    writes = [upsert(str(i), f"N-{i:05d}", numberofemployees=i) for i in range(10_000)]
    client = environments.client("contoso")
    before = client.stats.snapshot()

    started = time.perf_counter()
    results = environments.write("contoso", writes, deadline=deadline(120))
    elapsed = time.perf_counter() - started

    assert outcomes(results) == {Outcome.WRITTEN: 10_000}  # none would be dead-lettered
    assert [r.ref for r in results] == [w.ref for w in writes]
    assert org.count("account") == 10_000  # exactly once: one row per key
    for i in (0, 4321, 9999):
        row = org.row("account", accountnumber=f"N-{i:05d}")
        assert row is not None
        assert row["numberofemployees"] == i
    counters = org.counters.to_json()
    assert counters["faults"] == {"429": 3, "503": 2, "502": 1, "reset": 2}
    assert counters["requests"]["UpsertMultiple"] == 10  # successful bulk requests (1000 targets each)
    after = client.stats.snapshot()
    attempts = after["attempts"].get("UpsertMultiple", 0) - before["attempts"].get("UpsertMultiple", 0)
    print(
        f"\n10,000 upserts via UpsertMultiple with 3x429 (one per limit code), 2x503, 1x502, 2 resets: {elapsed:.2f} s,"
        f" {attempts} UpsertMultiple attempts, {10_000 / elapsed:,.0f} records/s, client stats {after}"
    )


def test_adaptive_concurrency_under_the_emulators_own_limits(
    environments: DataverseEnvironments, orgs: dict[str, Org]
) -> None:
    """Real service-protection throttling (not scripted): a concurrency limit of 2 against 8 parallel requests.
    Every record lands; the client shrinks its concurrency (AIMD) and honours Retry-After."""
    org = orgs["fabrikam"]
    org.set_limits(concurrency=2, window_seconds=2.0)
    org.set_latency(LatencyModel(scale=0.05))  # requests overlap long enough to collide
    writes = [upsert(str(i), f"C-{i:05d}") for i in range(4000)]
    client = environments.client("fabrikam")
    try:
        started = time.perf_counter()
        results = environments.write("fabrikam", writes, deadline=deadline(90))
        elapsed = time.perf_counter() - started
    finally:
        org.set_limits(concurrency=52, window_seconds=300.0)
    assert outcomes(results) == {Outcome.WRITTEN: 4000}
    assert org.count("account") == 4000
    throttled = org.counters.to_json()["throttled"]
    print(
        f"\n4,000 upserts in chunks of 1000 at a server concurrency limit of 2: {elapsed:.2f} s, 429s sent {throttled},"
        f" client concurrency limit now {client.limiter.limit}"
    )


def test_one_invalid_record_among_a_thousand(environments: DataverseEnvironments, orgs: dict[str, Org]) -> None:
    writes = [upsert(str(i), f"V-{i:04d}") for i in range(1000)]
    writes[617] = upsert("617", "V-0617", name="x" * 200)  # name is at most 160 characters
    client = environments.client("contoso")
    before = client.stats.snapshot()["attempts"]
    started = time.perf_counter()
    results = environments.write("contoso", writes, deadline=deadline())
    elapsed = time.perf_counter() - started
    bad = results[617]
    assert bad.outcome is Outcome.PERMANENT
    assert bad.status == 400
    assert bad.code == "0x80044331"
    assert "exceeded the maximum allowed length of '160'" in str(bad.message)
    assert bad.request_id
    assert outcomes(results) == {Outcome.WRITTEN: 999, Outcome.PERMANENT: 1}
    assert orgs["contoso"].count("account") == 999
    assert orgs["contoso"].row("account", accountnumber="V-0617") is None
    after = client.stats.snapshot()["attempts"]
    bulk, batches = (after.get(k, 0) - before.get(k, 0) for k in ("UpsertMultiple", "$batch"))
    print(f"\n1 bad record in 1,000: {bulk} UpsertMultiple and {batches} $batch requests, {elapsed:.2f} s")


ESCAPING_KEYS = {
    "quote": "O'Bryan",
    "quotes": "''",
    "unicode": "Zoë 東京 ☃",
    "spaces": "  a  b ",
    "hash": "#42",
    "parens": "(a),b=c",
    "injection": "x') or (name eq 'y",
    **{f"breaking {c!r}": f"k{c}v" for c in "/<>*%&:\\?+"},
    "mixed": "a/b#c'd e",
}


@pytest.mark.parametrize("use_bulk", [True, False], ids=["UpsertMultiple", "$batch"])
def test_key_escaping(
    environments: DataverseEnvironments, orgs: dict[str, Org], settings: Settings, use_bulk: bool
) -> None:
    org = orgs["contoso"]
    org.seed("account", [{"accountnumber": "y", "name": "victim y"}, {"accountnumber": "x", "name": "victim x"}])
    client = environments.client("contoso")
    client.metadata.get("account").bulk = None if use_bulk else False
    try:
        writes = [upsert(label, value, description=label) for label, value in ESCAPING_KEYS.items()]
        results = environments.write("contoso", writes, deadline=deadline())
        assert outcomes(results) == {Outcome.WRITTEN: len(ESCAPING_KEYS)}, [
            r for r in results if r.outcome != "written"
        ]
        # Each value landed on its own row with exactly that key; the injection touched nothing else.
        for label, value in ESCAPING_KEYS.items():
            row = org.row("account", accountnumber=value)
            assert row is not None, label
            assert row["description"] == label
            assert row["accountnumber"] == value
        assert org.count("account") == len(ESCAPING_KEYS) + 2
        assert org.row("account", accountnumber="y")["name"] == "victim y"  # type: ignore[index]
        assert org.row("account", accountnumber="x")["name"] == "victim x"  # type: ignore[index]

        # Second round: the same keys update (not duplicate), lookups by those keys bind, deletes find them.
        again = [upsert(label, value, description=f"{label} v2") for label, value in ESCAPING_KEYS.items()]
        contacts = [
            RecordWrite(
                f"c-{label}",
                "contact",
                Operation.UPSERT,
                {"emailaddress1": f"{i}@escaping.example"},
                {"lastname": label},
                {"parentcustomerid_account": Lookup("account", {"accountnumber": value})},
            )
            for i, (label, value) in enumerate(ESCAPING_KEYS.items())
        ]
        results = environments.write("contoso", again + contacts, deadline=deadline())
        assert outcomes(results) == {Outcome.WRITTEN: len(again) + len(contacts)}
        assert org.count("account") == len(ESCAPING_KEYS) + 2
        for i, (label, value) in enumerate(ESCAPING_KEYS.items()):
            account = org.row("account", accountnumber=value)
            assert account is not None
            assert account["description"] == f"{label} v2"
            contact = org.row("contact", emailaddress1=f"{i}@escaping.example")
            assert contact is not None
            assert contact["parentcustomerid"] == account["accountid"], label
    finally:
        client.metadata.get("account").bulk = None


def test_composite_keys_and_bulk_fallback_for_a_table_without_bulk_actions(
    environments: DataverseEnvironments, orgs: dict[str, Org]
) -> None:
    org = orgs["contoso"]
    lines = [
        RecordWrite(
            f"line-{n}",
            "dvs_orderline",
            Operation.UPSERT,
            {"dvs_ordernumber": "SO/1 'x'", "dvs_linenumber": n},
            {"dvs_name": f"line {n}", "dvs_quantity": n},
        )
        for n in range(1, 4)
    ] + [
        RecordWrite(
            f"line-b{n}",
            "dvs_orderline",
            Operation.UPSERT,
            {"dvs_ordernumber": "SO-2", "dvs_linenumber": n},
            {"dvs_quantity": n},
        )
        for n in range(1, 4)
    ]
    task_ids = [str(uuid.uuid4()) for _ in range(3)]
    tasks = [
        RecordWrite(f"task-{i}", "task", Operation.UPSERT, {"activityid": task_id}, {"subject": f"task {i}"})
        for i, task_id in enumerate(task_ids)
    ]
    results = environments.write("contoso", lines + tasks, deadline=deadline())
    assert outcomes(results) == {Outcome.WRITTEN: 9}
    assert org.count("dvs_orderline") == 6
    assert org.row("dvs_orderline", dvs_ordernumber="SO/1 'x'", dvs_linenumber=2)["dvs_quantity"] == 2  # type: ignore[index]
    assert {row["activityid"] for row in org.rows("task")} == set(task_ids)
    assert environments.client("contoso").metadata.get("task").bulk is False  # refused once, remembered
    assert org.counters.to_json()["requests"].get("$batch", 0) >= 1


def test_create_update_and_delete(environments: DataverseEnvironments, orgs: dict[str, Org]) -> None:
    org = orgs["contoso"]
    created = [
        RecordWrite(f"new-{i}", "account", Operation.CREATE, {"accountnumber": f"NEW-{i}"}, {"name": f"new {i}"})
        for i in range(5)
    ]
    assert outcomes(environments.write("contoso", created, deadline=deadline())) == {Outcome.WRITTEN: 5}
    duplicate = environments.write("contoso", created[:1], deadline=deadline())[0]
    assert duplicate.outcome is Outcome.PERMANENT  # the alternate key exists already
    updates = [
        RecordWrite("u-1", "account", Operation.UPDATE, {"accountnumber": "NEW-1"}, {"name": "renamed"}),
        RecordWrite("u-missing", "account", Operation.UPDATE, {"accountnumber": "NOPE"}, {"name": "x"}),
    ]
    results = environments.write("contoso", updates, deadline=deadline())
    assert results[0].outcome is Outcome.WRITTEN
    assert results[1].outcome is Outcome.PERMANENT  # update never creates
    assert org.row("account", accountnumber="NOPE") is None
    assert org.row("account", accountnumber="NEW-1")["name"] == "renamed"  # type: ignore[index]


def test_deletes_need_the_privilege_and_missing_rows_count_as_deleted(
    environments: DataverseEnvironments, orgs: dict[str, Org]
) -> None:
    org = orgs["contoso"]
    org.seed("account", [{"accountnumber": number, "name": number} for number in ("D-1", "D/2", "D-3")])
    deletes = [
        RecordWrite(f"del-{n}", "account", Operation.DELETE, {"accountnumber": n}) for n in ("D-1", "D/2", "D-404")
    ]
    original = org.app_users[seed.DATAVERSE_APP_CLIENT_ID]
    org.add_app_user(AppUser(**{**original.__dict__, "roles": [TABLE_ONLY_ROLE]}))  # no delete privilege
    try:
        refused = environments.write("contoso", deletes[:1], deadline=deadline())[0]
    finally:
        org.add_app_user(original)
    assert refused.outcome is Outcome.PERMANENT
    assert refused.status == 403
    assert refused.code == "0x80040220"  # PrivilegeDenied
    results = environments.write("contoso", deletes, deadline=deadline())  # the demo role may delete
    assert outcomes(results) == {Outcome.WRITTEN: 3}
    assert results[2].message == "row did not exist"
    assert sorted(r["accountnumber"] for r in org.rows("account")) == ["D-3"]


def test_impersonation_needs_the_privilege_and_records_the_caller(
    environments: DataverseEnvironments, orgs: dict[str, Org]
) -> None:
    org = orgs["contoso"]
    on_behalf = RecordWrite(
        "imp",
        "account",
        Operation.UPSERT,
        {"accountnumber": "IMP-1"},
        {"name": "imp"},
        caller_object_id=seed.CONTOSO_USER_OBJECT_ID,
    )
    original = org.app_users[seed.DATAVERSE_APP_CLIENT_ID]
    org.add_app_user(AppUser(**{**original.__dict__, "roles": [TABLE_ONLY_ROLE]}))  # no prvActOnBehalfOfAnotherUser
    try:
        refused = environments.write("contoso", [on_behalf], deadline=deadline())[0]
    finally:
        org.add_app_user(original)
    assert refused.outcome is Outcome.PERMANENT
    assert refused.status == 403
    accepted = environments.write("contoso", [on_behalf], deadline=deadline())[0]  # the demo role may
    assert accepted.outcome is Outcome.WRITTEN
    row = org.row("account", accountnumber="IMP-1")
    assert row is not None
    assert row["createdby"] == seed.CONTOSO_USER_SYSTEMUSER_ID


def test_bypass_headers_need_their_privilege(
    cloud: LocalCloud, settings: Settings, environments: DataverseEnvironments, orgs: dict[str, Org]
) -> None:
    """`bypass_custom_plugins` and the environment's `bypass_business_logic` reach Dataverse as the MSCRM.* headers
    (the emulator refuses them without prvBypassCustomPlugins / prvBypassCustomBusinessLogic)."""
    org = orgs["contoso"]
    contoso = settings.environments["contoso"].model_copy(update={"bypass_business_logic": "CustomSync,CustomAsync"})
    bypassing = DataverseEnvironments(
        dataclasses.replace(settings, environments={"contoso": contoso}),
        build_credentials(cloud, settings),
        bypass_custom_plugins=True,
    )
    try:
        refused = bypassing.write("contoso", [upsert("b", "BYP-1")], deadline=deadline())[0]
        assert refused.outcome is Outcome.PERMANENT
        assert refused.status == 403
        original = org.app_users[seed.DATAVERSE_APP_CLIENT_ID]
        org.add_app_user(AppUser(**{**original.__dict__, "roles": [SYNC_ROLE, BYPASS_ROLE]}))
        try:
            accepted = bypassing.write("contoso", [upsert("b", "BYP-1")], deadline=deadline())[0]
        finally:
            org.add_app_user(original)
    finally:
        bypassing.close()
    assert accepted.outcome is Outcome.WRITTEN
    assert org.row("account", accountnumber="BYP-1") is not None


def test_expired_token_is_refreshed_once(environments: DataverseEnvironments, orgs: dict[str, Org]) -> None:
    orgs["contoso"].add_fault(FaultRule(kind=FaultKind.EXPIRED_TOKEN, count=1))
    results = environments.write("contoso", [upsert("t", "TOK-1")], deadline=deadline())
    assert results[0].outcome is Outcome.WRITTEN


def test_the_deadline_bounds_a_call(environments: DataverseEnvironments, orgs: dict[str, Org]) -> None:
    orgs["contoso"].add_fault(FaultRule(kind=FaultKind.SLOW, count=5, delay_seconds=3.0))
    started = time.monotonic()
    results = environments.write("contoso", [upsert("s", "SLOW-1")], deadline=deadline(1.0))
    assert time.monotonic() - started < 2.0
    assert results[0].outcome is Outcome.TRANSIENT
    orgs["contoso"].clear_faults()


def test_paged_reads_follow_next_link(environments: DataverseEnvironments, orgs: dict[str, Org]) -> None:
    orgs["fabrikam"].seed("account", [{"accountnumber": f"P-{i:03d}", "name": f"p{i}"} for i in range(250)])
    pages = list(
        environments.client("fabrikam").pages(
            "accounts", {"$select": "accountnumber", "$orderby": "accountnumber"}, page_size=100
        )
    )
    assert [len(p) for p in pages] == [100, 100, 50]
    assert sorted(r["accountnumber"] for p in pages for r in p) == [f"P-{i:03d}" for i in range(250)]
