"""Coalescing repeated keys and ordering parents before children."""

from __future__ import annotations

import json
import time
from typing import Any

from shared.sync.contract import ParsedMessage, Record, parse_message
from shared.sync.planning import plan
from tests.sync.fakes import account, catalog, contact, envelope


def records(*bodies: dict[str, Any], environments: tuple[str, ...] = ("contoso",)) -> list[Record]:
    parsed = parse_message(json.dumps(envelope(*bodies)).encode(), "m")
    assert isinstance(parsed, ParsedMessage)
    assert not parsed.rejected
    cat = catalog(*environments)
    out = []
    for r in parsed.records:
        resolved = cat.resolve(r)
        assert isinstance(resolved, Record), resolved
        out.append(resolved)
    return out


def refs(wave: list[Record]) -> list[str]:
    return [r.ref for r in wave]


def test_the_highest_sequence_wins_regardless_of_arrival():
    the_plan = plan(
        records(account("A", sequence=5, data={"name": "new"}), account("A", sequence=3, data={"name": "old"}))
    )
    [[winner]] = the_plan.waves
    assert winner.data == {"name": "new"}
    [superseded] = the_plan.superseded
    assert (superseded.record.ref, superseded.by.ref) == ("m:1", "m:0")


def test_without_sequences_the_later_record_wins():
    the_plan = plan(records(account("A", data={"name": "first"}), account("A", data={"name": "second"})))
    assert the_plan.records[0].data == {"name": "second"}
    assert [s.record.ref for s in the_plan.superseded] == ["m:0"]


def test_a_sequenced_record_outranks_an_unsequenced_later_one():
    the_plan = plan(records(account("A", sequence=1, data={"name": "seq"}), account("A", data={"name": "none"})))
    assert the_plan.records[0].data == {"name": "seq"}


def test_keys_are_compared_as_dataverse_does_case_insensitively():
    the_plan = plan(records(account("abc-1"), account("ABC-1")))
    assert len(the_plan.records) == 1
    assert len(the_plan.superseded) == 1


def test_a_delete_after_an_upsert_of_the_same_row_wins():
    the_plan = plan(records(account("A"), {"table": "account", "operation": "delete", "key": {"accountnumber": "A"}}))
    assert [r.operation.value for r in the_plan.records] == ["delete"]


def test_same_key_in_different_environments_or_tables_is_not_coalesced():
    the_plan = plan(
        records(account("A", environment="contoso"), account("A", environment="fabrikam"),
                environments=("contoso", "fabrikam"))
    )  # fmt: skip
    assert len(the_plan.records) == 2
    assert not the_plan.superseded


def test_creates_without_key_are_never_coalesced():
    task = {"table": "task", "operation": "create", "data": {"subject": "Call"}}
    assert len(plan(records(task, task)).records) == 2


def test_parents_are_written_in_an_earlier_wave_than_their_children():
    the_plan = plan(records(contact("c@x", parent="A"), account("B"), account("A")))
    assert [refs(w) for w in the_plan.waves] == [["m:1", "m:2"], ["m:0"]]
    assert the_plan.parents == {"m:0": ["m:2"]}


def test_grandchildren_come_a_wave_later_still():
    task = {
        "table": "task",
        "operation": "create",
        "lookups": {"regardingobjectid_contact": {"table": "contact", "key": {"emailaddress1": "C@X"}}},
    }
    the_plan = plan(records(task, contact("c@x", parent="A"), account("A")))
    assert [refs(w) for w in the_plan.waves] == [["m:2"], ["m:1"], ["m:0"]]


def test_a_lookup_to_a_row_outside_the_batch_adds_no_ordering():
    the_plan = plan(records(contact("c@x", parent="elsewhere"), account("A")))
    assert len(the_plan.waves) == 1
    assert not the_plan.parents


def test_a_row_being_deleted_is_not_a_parent():
    the_plan = plan(records(contact("c@x", parent="A"),
                            {"table": "account", "operation": "delete", "key": {"accountnumber": "A"}}))  # fmt: skip
    assert len(the_plan.waves) == 1


def test_a_self_reference_adds_no_ordering():
    own = account("A", lookups={"parentaccountid": {"table": "account", "key": {"accountnumber": "A"}}})
    assert len(plan(records(own)).waves) == 1


def test_a_cycle_is_broken_and_everything_is_still_planned():
    a = account("A", lookups={"primarycontactid": {"table": "contact", "key": {"emailaddress1": "c@x"}}})
    c = contact("c@x", parent="A")
    child_of_cycle = {
        "table": "task",
        "operation": "create",
        "lookups": {"regardingobjectid_contact": {"table": "contact", "key": {"emailaddress1": "c@x"}}},
    }
    the_plan = plan(records(child_of_cycle, a, c))
    assert sorted(r.ref for r in the_plan.records) == ["m:0", "m:1", "m:2"]
    assert len(the_plan.cycle_breaks) == 1
    assert the_plan.cycle_breaks[0] in ("m:1", "m:2")
    position = {r.ref: i for i, wave in enumerate(the_plan.waves) for r in wave}
    assert position["m:0"] > position["m:2"]  # the task still follows its contact


def test_planning_fifty_thousand_records_is_fast_enough_for_the_bench(capsys):
    bodies = []
    for i in range(25_000):
        bodies.append(account(f"A-{i}"))
        bodies.append(contact(f"c{i}@x", parent=f"A-{i}"))
    parsed = parse_message(json.dumps(envelope(*bodies)).encode(), "m")
    assert isinstance(parsed, ParsedMessage)
    started = time.perf_counter()
    the_plan = plan([catalog("contoso").resolve(r) for r in parsed.records])  # type: ignore[misc]
    seconds = time.perf_counter() - started
    assert [len(w) for w in the_plan.waves] == [25_000, 25_000]
    with capsys.disabled():
        print(f"\n[measure] resolve+plan 50,000 records: {seconds:.2f} s")
