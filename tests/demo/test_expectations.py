"""What the demo's records must become: worked out from the records and the demo schema alone."""

from __future__ import annotations

from collections import Counter

from emulators.dataverse.schema import Schema
from emulators.demo.expectations import RowOutcome, SentRecord, expect_rows, landed_counts, outcome_counts
from emulators.demo.sample import expect_invalid_message, load_sample
from shared.queues.producer import pack_texts, prepare
from tests.demo.conftest import account, contact, demo_catalog, sent

SCHEMA = Schema.load()


def test_the_sample_data_set_lands_except_five_refused_accounts_and_the_children_of_missing_parents():
    sample = load_sample()
    prepared = prepare(sample.records, demo_catalog(), environment="contoso")
    numbers = [n for n, (_, count, _) in enumerate(pack_texts(prepared.texts)) for _ in range(count)]
    rows = expect_rows([SentRecord(r, n) for r, n in zip(prepared.records, numbers, strict=True)], SCHEMA)
    assert outcome_counts(rows.values()) == Counter(
        {
            ("contoso", "account", RowOutcome.LANDED): 1190,
            ("contoso", "account", RowOutcome.REJECTED): 5,  # names over 160 characters, industry code 99
            ("contoso", "account", RowOutcome.MISSING_PARENT): 5,  # their parent is one of the refused five
            ("contoso", "contact", RowOutcome.LANDED): 2381,
            ("contoso", "contact", RowOutcome.MISSING_PARENT): 19,  # ACC-99999, or a refused/missing account
        }
    )
    rejected = {row.key["accountnumber"]: row.dataverse_code for row in rows.values() if row.dataverse_code}
    assert rejected == {
        "ACC-00250": "0x8004431a",  # not an option of industrycode
        "ACC-00400": "0x80044331",  # longer than MaxLength
        "ACC-00750": "0x8004431a",
        "ACC-00800": "0x80044331",
        "ACC-01200": "0x80044331",
    }
    assert sum(1 for row in rows.values() if row.records == 2) == 24  # a later change of every 100th contact


def test_a_child_of_a_refused_parent_and_its_own_child_miss_their_parent():
    records = [
        account("P", name="x" * 161),  # too long: refused
        account("C", parent="P"),
        account("G", parent="C"),
        account("OK", parent="LATER"),
        account("LATER"),
    ]
    rows = {row.key["accountnumber"]: row for row in expect_rows(sent(records), SCHEMA).values()}
    assert rows["P"].outcome is RowOutcome.REJECTED
    assert rows["P"].dead_letter_range == (1, 1)
    assert rows["C"].outcome is RowOutcome.MISSING_PARENT
    assert rows["G"].outcome is RowOutcome.MISSING_PARENT
    assert rows["OK"].outcome is RowOutcome.LANDED  # its parent comes later but lands
    assert rows["OK"].dead_letter_range == (0, 0)


def test_records_that_look_each_other_up_can_never_be_created():
    rows = expect_rows(sent([account("A", parent="B"), account("B", parent="A"), account("C")]), SCHEMA)
    assert Counter(row.outcome for row in rows.values()) == {RowOutcome.MISSING_PARENT: 2, RowOutcome.LANDED: 1}


def test_the_highest_sequence_wins_and_rows_split_over_messages_are_not_value_checked():
    records = [
        account("A"),
        contact("a@x.com", parent="A", sequence=2, jobtitle="new"),
        contact("A@X.COM", parent="A", sequence=1, jobtitle="old"),  # the same row: keys compare case-insensitively
        contact("b@x.com", parent="A", jobtitle="first"),
        contact("b@x.com", parent="A", jobtitle="second"),
    ]
    contacts = [row for row in expect_rows(sent(records), SCHEMA).values() if row.table == "contact"]
    rows = {str(row.key["emailaddress1"]).lower(): row for row in contacts}
    assert rows["a@x.com"].data["jobtitle"] == "new"
    assert rows["b@x.com"].data["jobtitle"] == "second"  # no sequence: the later one
    assert rows["a@x.com"].values_are_determined
    split = expect_rows(sent(records[:3], messages=[0, 1, 2]), SCHEMA)
    [row] = [row for row in split.values() if row.table == "contact"]
    assert (row.records, row.messages, row.values_are_determined) == (2, 2, False)
    assert landed_counts(split.values()) == Counter({("contoso", "account"): 1, ("contoso", "contact"): 1})


def test_invalid_messages_are_judged_by_the_records_handler_under_the_demo_configuration():
    cases = {message.name: message for message in load_sample().invalid_messages}
    catalog = demo_catalog()
    not_json = expect_invalid_message(cases["not JSON"], catalog)
    assert not_json.codes == Counter({"invalid_json": 1})
    assert expect_invalid_message(cases["plain text where base64 is expected"], catalog).codes == {"queue_encoding": 1}
    # Two environments are configured, so the valid neighbour names none and is refused too.
    neighbours = expect_invalid_message(cases["unknown environment and unknown table beside a valid record"], catalog)
    assert neighbours.codes == Counter({"environment_required": 2, "unknown_environment": 1})
    assert neighbours.written == []
