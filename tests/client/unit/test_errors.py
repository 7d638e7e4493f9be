from __future__ import annotations

import pytest
import requests

from shared.dataverse.errors import DataverseError, classify, connection_error, parse_error
from shared.sync.ports import Outcome


def test_parses_the_documented_error_body() -> None:
    error = parse_error(400, b'{"error":{"code":"0x80044331","message":"A validation error occurred."}}', "r1")
    assert (error.status, error.code, error.message, error.request_id) == (
        400,
        "0x80044331",
        "A validation error occurred.",
        "r1",
    )


def test_non_json_bodies_become_a_short_excerpt() -> None:
    error = parse_error(502, b"<html>\n<body>Bad   gateway</body></html>" + b"x" * 1000)
    assert error.code is None
    assert error.message.startswith("<html> <body>Bad gateway")
    assert len(error.message) <= 300
    assert parse_error(503, b"").message == "HTTP 503"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("0x80072322", "requests"),
        ("0x80072321", "execution time"),
        ("0x80072326", "concurrency"),
        ("-2147015902", "requests"),
    ],
)
def test_throttle_codes(code: str, kind: str) -> None:
    error = DataverseError(429, code, "limit")
    assert error.throttle_kind == kind
    assert error.is_transient
    assert classify(error) is Outcome.TRANSIENT


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (502, None, Outcome.TRANSIENT),
        (503, None, Outcome.TRANSIENT),
        (504, None, Outcome.TRANSIENT),
        (None, None, Outcome.TRANSIENT),  # connection reset / timeout
        (401, None, Outcome.TRANSIENT),  # still 401 after a token refresh: the environment's auth
        (500, "0x80044150", Outcome.TRANSIENT),  # SQL deadlock
        (500, "0x80044151", Outcome.TRANSIENT),  # SQL timeout
        (400, "0x80044331", Outcome.PERMANENT),  # max length
        (403, "0x80040220", Outcome.PERMANENT),  # privilege
        (412, "0x80060892", Outcome.PERMANENT),  # duplicate key
        (500, "0x80040265", Outcome.PERMANENT),  # plug-in error
        (404, "0x80040217", Outcome.PERMANENT),  # update of a missing row, no lookups
    ],
)
def test_classification(status: int | None, code: str | None, outcome: Outcome) -> None:
    assert classify(DataverseError(status, code, "m")) is outcome


def test_missing_lookup_target_is_a_dependency() -> None:
    error = DataverseError(404, "0x80040217", "account With Ids = 1d3b... Do Not Exist")
    assert classify(error, lookup_tables=["account"], own_table="contact") is Outcome.DEPENDENCY
    # a missing row of an unrelated table is not this record's dependency
    assert classify(error, lookup_tables=["systemuser"], own_table="contact") is Outcome.PERMANENT
    # an update (not upsert) whose own row is missing is permanent even with a self-lookup
    assert classify(error, lookup_tables=["account"], own_table="account", upsert=False) is Outcome.PERMANENT
    assert classify(error, lookup_tables=["account"], own_table="account", upsert=True) is Outcome.DEPENDENCY
    # table names match whole words only
    assert classify(error, lookup_tables=["acc"], own_table="contact") is Outcome.PERMANENT


def test_too_large_requests_are_recognised() -> None:
    assert DataverseError(413, None, "").too_large
    assert DataverseError(500, "0x80044151", "SQL timeout expired").too_large
    assert not DataverseError(400, "0x80044331", "").too_large


def test_connection_errors_keep_no_url() -> None:
    error = connection_error(
        requests.ConnectionError("('Connection aborted.', RemoteDisconnected(...)) https://x/accounts(k='secret-ish')")
    )
    assert error.status is None
    assert "connection reset" in error.message
    assert "accounts" not in error.message
