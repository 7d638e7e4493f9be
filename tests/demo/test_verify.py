"""The demo's verdict: every difference between what had to happen and what was read back is a problem."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from emulators.dataverse.schema import Schema
from emulators.demo.expectations import ExpectedRow, RowId, expect_rows
from emulators.demo.verify import Observed, Verdict, verify
from shared.sync.deadletter import DeadLetter
from shared.sync.problems import ReasonKind
from tests.demo.conftest import account, contact, dead_letter, sent

SCHEMA = Schema.load()
REFUSED = account("BAD", name="x" * 161)
RECORDS = [account("A", numberofemployees=12, revenue=1234.5), contact("ann@x.com", parent="A"), REFUSED]
ACCOUNT_ID, CONTACT_ID = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000c"


@pytest.fixture
def expected() -> dict[RowId, ExpectedRow]:
    return expect_rows(sent(RECORDS), SCHEMA)


def stored_account(**changes: Any) -> dict[str, Any]:
    row = {"accountid": ACCOUNT_ID, "accountnumber": "A", "name": "A", "numberofemployees": 12, "revenue": 1234.5}
    return {**row, **changes}


def stored_contact(**changes: Any) -> dict[str, Any]:
    row = {"contactid": CONTACT_ID, "emailaddress1": "Ann@x.com", "lastname": "Lee",
           "parentcustomerid": ACCOUNT_ID, "parentcustomerid@table": "account"}  # fmt: skip
    return {**row, **changes}


def observe(
    accounts: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    dead_letters: list[DeadLetter] | None = None,
    depths: dict[str, int] | None = None,
) -> Observed:
    refused = dead_letter(REFUSED, ReasonKind.REJECTED, "dataverse_rejected", dataverse_code="0x80044331")
    return Observed(
        rows={
            ("contoso", "account"): [stored_account()] if accounts is None else accounts,
            ("contoso", "contact"): [stored_contact()] if contacts is None else contacts,
        },
        dead_letters=[refused] if dead_letters is None else dead_letters,
        queue_depths=depths or {"dvsync-records": 0},
    )


def check(expected: dict[RowId, ExpectedRow], observed: Observed, codes: dict[str, Counter[str]] | None = None):
    return verify(expected, codes or {}, observed, SCHEMA)


def test_everything_as_expected_is_ok(expected):
    verdict = check(expected, observe())
    assert verdict.problems == []
    assert verdict.ok
    assert verdict.landed == Counter({("contoso", "account"): 1, ("contoso", "contact"): 1})


def test_a_row_that_did_not_land_is_a_problem(expected):
    verdict = check(expected, observe(contacts=[]))
    assert verdict.problems == ["contoso/contact ann@x.com should have landed but is not in Dataverse"]


def test_a_refused_row_found_in_dataverse_and_a_row_nobody_sent_are_problems(expected):
    accounts = [stored_account(), stored_account(accountid="b", accountnumber="BAD"), stored_account(accountnumber="Z")]
    problems = check(expected, observe(accounts=accounts)).problems
    assert "contoso/account BAD should be rejected but is in Dataverse" in problems
    assert "contoso/account holds 1 row(s) no record asked for" in problems  # Z; BAD is reported above


def test_wrong_values_and_a_lookup_to_another_row_are_problems(expected):
    verdict = check(
        expected,
        observe(accounts=[stored_account(numberofemployees=13, revenue=1234.501)],
                contacts=[stored_contact(parentcustomerid="someone-else")]),
    )  # fmt: skip
    assert verdict.problems == [
        "contoso/account A: numberofemployees is 13, expected 12",  # money within rounding is the same
        "contoso/contact ann@x.com: lookup parentcustomerid_account does not point at its parent account row",
    ]


def test_dead_letters_must_carry_the_expected_reason_and_code(expected):
    wrong_code = dead_letter(REFUSED, ReasonKind.REJECTED, "dataverse_rejected", dataverse_code="0x8004431a")
    assert check(expected, observe(dead_letters=[wrong_code])).problems == [
        "contoso/account BAD: Dataverse code 0x8004431a, expected 0x80044331"
    ]
    wrong_kind = dead_letter(REFUSED, ReasonKind.MISSING_PARENT, "parent_not_found")
    assert "dead-lettered as missing_parent/parent_not_found" in check(expected, observe(dead_letters=[wrong_kind]))\
        .problems[0]  # fmt: skip
    assert check(expected, observe(dead_letters=[])).problems == [
        "contoso/account BAD: 0 dead-letter entries, expected 1"
    ]


def test_a_dead_letter_for_a_row_that_landed_or_for_nothing_sent_is_a_problem(expected):
    refused = dead_letter(REFUSED, ReasonKind.REJECTED, "dataverse_rejected", dataverse_code="0x80044331")
    landed_too = dead_letter(account("A"), ReasonKind.REJECTED, "dataverse_rejected")
    stranger = dead_letter(account("NEVER-SENT"), ReasonKind.REJECTED, "dataverse_rejected")
    problems = check(expected, observe(dead_letters=[refused, landed_too, stranger])).problems
    assert sorted(problems) == [
        "contoso/account A: 1 dead-letter entries, expected 0",
        f"unexpected dead letter {stranger.id}: rejected/dataverse_rejected",
    ]


def test_invalid_messages_are_matched_by_message_id_and_codes(expected):
    entries = [
        dead_letter(None, ReasonKind.INVALID_MESSAGE, "invalid_json", message_id="raw-1"),
        dead_letter({"table": "account"}, ReasonKind.INVALID_RECORD, "key_required", message_id="raw-2"),
    ]
    refused = dead_letter(REFUSED, ReasonKind.REJECTED, "dataverse_rejected", dataverse_code="0x80044331")
    codes = {"raw-1": Counter({"invalid_json": 1}), "raw-2": Counter({"key_required": 1, "schema_violation": 1})}
    verdict: Verdict = check(expected, observe(dead_letters=[refused, *entries]), codes)
    assert verdict.problems == [
        "message raw-2: dead-letter codes {'key_required': 1}, expected {'key_required': 1, 'schema_violation': 1}"
    ]
    assert len(verdict.message_dead_letters) == 2


def test_a_message_left_in_a_queue_is_a_problem(expected):
    problems = check(expected, observe(depths={"dvsync-bulk": 2, "dvsync-records": 0})).problems
    assert problems == ["dvsync-bulk still holds 2 message(s)"]
