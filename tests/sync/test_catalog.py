"""Records against the configured environments and tables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.sync.catalog import Catalog
from shared.sync.contract import ParsedMessage, Record, parse_message
from shared.sync.problems import Code, Problem
from tests.sync.fakes import account, catalog, contact


def record(body: dict[str, Any]) -> Record:
    parsed = parse_message(json.dumps(body).encode(), "m")
    assert isinstance(parsed, ParsedMessage), parsed
    assert parsed.records, parsed.rejected
    return parsed.records[0]


def resolve(body: dict[str, Any], cat: Catalog | None = None) -> Record | Problem:
    return (cat or catalog("contoso")).resolve(record(body), ("records", 0))


def test_the_only_environment_is_the_default():
    resolved = resolve(account("A-1"))
    assert isinstance(resolved, Record)
    assert resolved.environment == "contoso"


def test_with_several_environments_a_record_must_name_one():
    problem = resolve(account("A-1"), catalog("contoso", "fabrikam"))
    assert isinstance(problem, Problem)
    assert (problem.code, problem.path) == (Code.ENVIRONMENT_REQUIRED, "records[0].environment")
    assert "contoso, fabrikam" in problem.message
    resolved = resolve(account("A-1", environment="fabrikam"), catalog("contoso", "fabrikam"))
    assert isinstance(resolved, Record)
    assert resolved.environment == "fabrikam"


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        (account("A", environment="northwind"), Code.UNKNOWN_ENVIRONMENT, "records[0].environment"),
        ({"table": "lead", "key": {"leadid": "x"}}, Code.UNKNOWN_TABLE, "records[0].table"),
        ({"table": "account", "key": {"name": "Contoso"}}, Code.NOT_AN_ALTERNATE_KEY, "records[0].key"),
        ({"table": "contact", "key": {"firstname": "Ann"}}, Code.NOT_AN_ALTERNATE_KEY, "records[0].key"),
        ({"table": "account", "key": {"accountid": "not-a-guid"}}, Code.INVALID_PRIMARY_ID,
         "records[0].key.accountid"),
        (contact("a@x", lookups={"parentcustomerid_account": {"table": "account", "key": {"name": "C"}}}),
         Code.NOT_AN_ALTERNATE_KEY, "records[0].lookups.parentcustomerid_account.key"),
        (account("A-1", data={"accountnumber": "A-2"}), Code.KEY_CONFLICT, "records[0].data.accountnumber"),
    ],
)  # fmt: skip
def test_configuration_problems_name_the_member(body, code, path):
    problem = resolve(body)
    assert isinstance(problem, Problem)
    assert (problem.code, problem.path) == (code, path), problem.message


def test_any_configured_alternate_key_or_the_primary_id_is_accepted():
    for key in (
        {"emailaddress1": "a@x"},
        {"firstname": "Ann", "lastname": "Lee"},
        {"contactid": "5959E0E0-0000-4000-8000-0000000C0101"},
    ):
        assert isinstance(resolve({"table": "contact", "key": key}), Record), key


def test_tables_without_configured_keys_leave_the_key_to_dataverse():
    assert isinstance(resolve({"table": "task", "key": {"new_externalid": "T-1"}}), Record)


def test_lookups_to_tables_the_app_does_not_write_are_left_to_dataverse():
    body = contact("a@x", lookups={"ownerid": {"table": "systemuser", "key": {"domainname": "ann@contoso.com"}}})
    assert isinstance(resolve(body), Record)


def test_key_columns_repeated_with_the_same_value_are_dropped_from_data():
    resolved = resolve(account("A-1", data={"accountnumber": "A-1", "name": "Contoso"}))
    assert isinstance(resolved, Record)
    assert resolved.data == {"name": "Contoso"}
    assert resolved.raw["data"] == {"accountnumber": "A-1", "name": "Contoso"}  # dead letters keep what was sent


def test_problem_messages_do_not_echo_key_values_which_may_be_personal_data():
    conflict = resolve(contact("ann@contoso.com", data={"emailaddress1": "bob@contoso.com"}))
    bad_id = resolve({"table": "contact", "key": {"contactid": "ann@contoso.com"}})
    for problem in (conflict, bad_id):
        assert isinstance(problem, Problem)
        assert "contoso.com" not in problem.message
