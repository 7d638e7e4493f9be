"""Valid records land: accounts, contacts looking up accounts, a composite-key custom table, in both environments,
through the real function_app.py in the local runner."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Pipeline, account, contact, envelope, orderline, row_values

pytestmark = [pytest.mark.cloud, pytest.mark.azurite]


def test_records_land_in_their_environment_with_lookups_and_composite_keys(pipeline: Pipeline):
    contoso = envelope(
        contact("ann@contoso.com", parent="C-1", firstname="Ann"),  # children first: the handler orders them
        contact("bo@contoso.com", parent="C-2", firstname="Bo"),
        orderline("SO-1", 1, "C-1", dvs_quantity=2.5, dvs_unitprice=9.99, dvs_status=1),
        orderline("SO-1", 2, "C-1", dvs_quantity=1, dvs_isgift=True),
        orderline("SO-2", 1, "C-2", dvs_product="Widget"),
        account("C-1", numberofemployees=120, industrycode=3),
        account("C-2", creditonhold=False),
    )
    fabrikam = envelope(
        account("C-1", environment="fabrikam", name="Fabrikam's own C-1"),  # same key, other environment
        contact("cy@fabrikam.com", parent="C-1", environment="fabrikam"),
    )
    bare_record = account("F-9", environment="fabrikam", telephone1="+1 555 0100")  # one record, no envelope
    for message in (contoso, fabrikam, bare_record):
        pipeline.send(message)

    host = pipeline.run_until_idle()

    contoso_org, fabrikam_org = pipeline.org("contoso"), pipeline.org("fabrikam")
    accounts = row_values(contoso_org.rows("account"), "accountnumber", "name", "numberofemployees", "industrycode")
    assert accounts == {"C-1": ("Account C-1", 120, 3), "C-2": ("Account C-2", None, None)}
    ids = {row["accountnumber"]: row["accountid"] for row in contoso_org.rows("account")}
    contacts = row_values(contoso_org.rows("contact"), "emailaddress1", "firstname", "parentcustomerid")
    assert contacts == {"ann@contoso.com": ("Ann", ids["C-1"]), "bo@contoso.com": ("Bo", ids["C-2"])}
    lines = {
        (row["dvs_ordernumber"], row["dvs_linenumber"]): (row["dvs_accountid"], row.get("dvs_quantity"))
        for row in contoso_org.rows("dvs_orderline")
    }
    assert lines == {("SO-1", 1): (ids["C-1"], 2.5), ("SO-1", 2): (ids["C-1"], 1), ("SO-2", 1): (ids["C-2"], None)}
    line = contoso_org.row("dvs_orderline", dvs_ordernumber="SO-1", dvs_linenumber=1)
    assert line is not None
    assert (line["dvs_unitprice"], line["dvs_status"]) == (9.99, 1)

    assert row_values(fabrikam_org.rows("account"), "accountnumber", "name", "telephone1") == {
        "C-1": ("Fabrikam's own C-1", None),
        "F-9": ("Account F-9", "+1 555 0100"),
    }
    [fabrikam_contact] = fabrikam_org.rows("contact")
    fabrikam_c1 = fabrikam_org.row("account", accountnumber="C-1")
    assert fabrikam_c1 is not None
    assert fabrikam_contact["parentcustomerid"] == fabrikam_c1["accountid"]  # not contoso's C-1

    assert pipeline.dead_letters() == []
    assert set(pipeline.queue_depths().values()) == {0}
    stats = host.stats["sync_records"]
    assert (stats.invocations, stats.successes, stats.failures) == (3, 3, 0)
    # Writes are grouped per table into bulk requests: 7 contoso records in 3 UpsertMultiple calls, not 7 PATCHes.
    contoso_requests = contoso_org.counters.requests
    print(f"\ncontoso requests: {dict(contoso_requests)}")
    assert contoso_requests["UpsertMultiple"] == 3
    assert contoso_org.counters.records_written == 7


def test_key_values_that_look_like_injection_are_written_as_literals(pipeline: Pipeline):
    """Key values are data: quotes, OData operators and URL-breaking characters address exactly one row."""
    pipeline.org().seed("account", [{"accountnumber": "Z-1", "name": "untouched"}])
    hostile_keys = ["O'Brien", "' or 1 eq 1 --", "x') or (name eq 'y", "a/b?c=d", "50% & more", "Z-1' or '1'='1"]
    pipeline.send(envelope(*(account(key, name=f"row for {key}") for key in hostile_keys)))

    pipeline.run_until_idle()

    rows = row_values(pipeline.org().rows("account"), "accountnumber", "name")
    assert rows == {"Z-1": ("untouched",), **{key: (f"row for {key}",) for key in hostile_keys}}
    assert pipeline.dead_letters() == []
