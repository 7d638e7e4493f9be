from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.dataverse.keys import (
    InvalidKey,
    any_of_filter,
    filter_expression,
    key_predicate,
    needs_id_addressing,
    odata_literal,
    record_path,
    record_reference,
)

GUID = "5E7A1CE0-0000-4000-8000-0000000C0001"


def test_documented_key_forms() -> None:
    # use-alternate-key-reference-record: the table of relative URLs
    assert record_path("accounts", {"accountid": GUID}, primary_id="accountid") == f"accounts({GUID.lower()})"
    assert record_path("accounts", {"accountnumber": "ABC123"}) == "accounts(accountnumber='ABC123')"
    assert (
        record_path("contacts", {"firstname": "Joe", "emailaddress1": "abc@example.com"})
        == "contacts(firstname='Joe',emailaddress1='abc%40example.com')"
    )
    assert (
        record_path("accounts", {"_primarycontactid_value": GUID})
        == f"accounts(_primarycontactid_value={GUID.lower()})"
    )
    assert record_path("example_records", {"example_key1": 2, "example_key2": 2}) == (
        "example_records(example_key1=2,example_key2=2)"
    )


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("O'Bryan", "'O''Bryan'"),
        ("x') or (name eq 'y", "'x'') or (name eq ''y'"),
        (True, "true"),
        (False, "false"),
        (-7, "-7"),
        (1.5, "1.5"),
        (1e-7, "0.0000001"),
        (1e20, "100000000000000000000"),
        (GUID, f"'{GUID}'"),  # a GUID in a string column stays a string
    ],
)
def test_literals(value: object, literal: str) -> None:
    assert odata_literal("col", value) == literal  # type: ignore[arg-type]


def test_unrepresentable_keys_are_rejected() -> None:
    with pytest.raises(InvalidKey):
        odata_literal("n", float("nan"))
    with pytest.raises(InvalidKey):
        key_predicate({})
    with pytest.raises(InvalidKey):
        key_predicate({"accountid": "not-a-guid"}, primary_id="accountid")


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a b", "'a%20b'"),
        ("#1", "'%231'"),
        ("Zoë 東京", "'Zo%C3%AB%20%E6%9D%B1%E4%BA%AC'"),
        ("x') or (name eq 'y", "'x''%29%20or%20%28name%20eq%20''y'"),
        ("a,b=c", "'a%2Cb%3Dc'"),
    ],
)
def test_values_are_percent_encoded_in_urls(value: str, encoded: str) -> None:
    assert key_predicate({"k": value}) == f"(k={encoded})"


@given(st.text(min_size=1, max_size=40))
def test_encoding_round_trips_and_never_leaves_a_lone_quote(value: str) -> None:
    predicate = key_predicate({"k": value})
    assert "#" not in predicate
    assert " " not in predicate
    assert "/" not in predicate
    decoded = unquote(predicate)
    inner = decoded[len("(k=") : -1]
    assert inner.startswith("'")
    assert inner.endswith("'")
    assert inner[1:-1].replace("''", "").count("'") == 0
    assert inner[1:-1].replace("''", "'") == value


@pytest.mark.parametrize("char", list("/<>*%&:\\?+"))
def test_key_breaking_characters_are_detected(char: str) -> None:
    assert needs_id_addressing({"k": f"a{char}b"})


@pytest.mark.parametrize("value", ["#1", "line\nbreak", "tab\t", "\x7f"])
def test_characters_unsafe_in_body_references_also_take_the_id_path(value: str) -> None:
    assert needs_id_addressing({"k": value})


def test_ordinary_values_are_addressed_by_key() -> None:
    assert not needs_id_addressing({"k": "O'Bryan (Zoë) 東京 a=b,c", "n": 5, "flag": True})


def test_body_references_keep_literals_unencoded() -> None:
    assert record_reference("accounts", {"accountnumber": "Zoë A (1)"}) == "accounts(accountnumber='Zoë A (1)')"
    assert record_reference("accounts", {"accountnumber": "x') or (name eq 'y"}) == (
        "accounts(accountnumber='x'') or (name eq ''y')"
    )
    assert record_reference("accounts", {"accountid": GUID}, primary_id="accountid") == f"accounts({GUID.lower()})"


def test_filters_double_quotes_and_combine_keys() -> None:
    assert filter_expression({"accountnumber": "x') or (name eq 'y"}) == "accountnumber eq 'x'') or (name eq ''y'"
    assert filter_expression({"a": "1", "b": 2}) == "a eq '1' and b eq 2"
    assert any_of_filter([{"a": "1"}, {"a": "2"}]) == "(a eq '1') or (a eq '2')"
