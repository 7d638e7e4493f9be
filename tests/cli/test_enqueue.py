"""`python -m shared enqueue`: whole file validated first, errors by line and column, nothing half-sent silently."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from shared.queues.adapters import QueueAdapters
from shared.queues.names import BULK_QUEUE, RECORDS_QUEUE
from tests.cli.conftest import Cli

pytestmark = pytest.mark.azurite

ROOT = Path(__file__).resolve().parents[2]


def sent_records(storage: QueueServiceClient, queue: str = RECORDS_QUEUE) -> list[dict[str, Any]]:
    messages = storage.get_queue_client(queue).peek_messages(max_messages=32)
    return [r for m in messages for r in json.loads(base64.b64decode(m.content))["records"]]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_becomes_typed_records_with_lookups_and_source_ids(cli: Cli, storage, tmp_path):
    csv = write(
        tmp_path,
        "accounts.csv",
        "accountnumber,name,numberofemployees:int,creditonhold:bool,parentaccountid@account.accountnumber,fax\n"
        'A-1,"Contoso, Ltd",120,no,,\n'
        "A-2,Fabrikam,7,yes,A-1,\n",
    )
    run = cli("enqueue", str(csv), "--table", "account", "--no-progress")
    assert run.code == 0, run.err
    assert "sent 2 records from accounts.csv in 1 messages to dvsync-records" in run.out
    first, second = sent_records(storage)
    assert first == {
        "table": "account",
        "source_id": "accounts.csv:2",
        "key": {"accountnumber": "A-1"},
        "data": {"name": "Contoso, Ltd", "numberofemployees": 120, "creditonhold": False},
    }
    assert second["lookups"] == {"parentaccountid": {"table": "account", "key": {"accountnumber": "A-1"}}}
    assert second["source_id"] == "accounts.csv:3"


def test_every_bad_cell_and_record_is_named_by_line_and_column_and_nothing_is_sent(cli: Cli, storage, tmp_path):
    csv = write(
        tmp_path,
        "accounts.csv",
        "accountnumber,name,numberofemployees:int,Revenue\n"
        "A-1,Contoso,12,1\n"
        "A-2,Fabrikam,twelve,2\n"
        "A-3,Northwind,3\n"
        ",Empty key,4,5\n",
    )
    run = cli("enqueue", str(csv), "--table", "account", "--no-progress")
    assert run.code == 2
    assert sent_records(storage) == []
    assert "accounts.csv:3: column 'numberofemployees:int': 'twelve' is not an integer" in run.err
    assert "accounts.csv:4: 3 cells, but the header has 4 columns" in run.err
    assert "accounts.csv:2: column 'Revenue':" in run.err  # not a logical name (uppercase)
    assert "nothing was sent" in run.err


def test_the_key_must_be_given_when_the_table_config_cannot_tell(cli: Cli, storage, tmp_path):
    csv = write(tmp_path, "contacts.csv", "firstname,lastname\nAnn,Lee\n")
    run = cli("enqueue", str(csv), "--table", "contact")
    assert run.code == 2
    assert "--key" in run.err
    run = cli("enqueue", str(csv), "--table", "contact", "--key", "firstname,lastname")
    assert run.code == 2  # firstname+lastname is not an alternate key of contact in this configuration
    assert "is not an alternate key of contact" in run.err


def test_jsonl_takes_contract_records_and_flat_rows(cli: Cli, storage, tmp_path):
    jsonl = write(
        tmp_path,
        "mixed.jsonl",
        json.dumps({"table": "contact", "key": {"emailaddress1": "a@x"}, "data": {"lastname": "Lee"}}) + "\n"
        "\n" + json.dumps({"accountnumber": "A-9", "name": "Flat", "numberofemployees": 3}) + "\n",
    )
    run = cli("enqueue", str(jsonl), "--table", "account", "--no-progress")
    assert run.code == 2  # the contract record names another table than --table
    assert "mixed.jsonl:1: column 'table'" in run.err
    jsonl.write_text(json.dumps({"accountnumber": "A-9", "name": "Flat", "numberofemployees": 3}) + "\n")
    run = cli("enqueue", str(jsonl), "--table", "account", "--no-progress")
    assert run.code == 0, run.err
    [record] = sent_records(storage)
    assert record["data"] == {"name": "Flat", "numberofemployees": 3}


def test_invalid_json_lines_are_named_with_their_position(cli: Cli, storage, tmp_path):
    jsonl = write(tmp_path, "bad.jsonl", '{"accountnumber": "A-1"}\n{"accountnumber": "A-2",}\n[1]\n')
    run = cli("enqueue", str(jsonl), "--table", "account")
    assert run.code == 2
    assert "bad.jsonl:2: column 'character 25': invalid JSON" in run.err
    assert "bad.jsonl:3: each line must be a JSON object" in run.err
    assert sent_records(storage) == []


def test_dry_run_validates_without_sending_and_bulk_goes_to_the_bulk_queue(cli: Cli, storage, tmp_path):
    csv = write(tmp_path, "a.csv", "accountnumber,name\nA-1,X\n")
    assert cli("enqueue", str(csv), "--table", "account", "--dry-run").code == 0
    assert sent_records(storage) == []
    assert cli("enqueue", str(csv), "--table", "account", "--bulk", "--no-progress").code == 0
    assert [r["key"] for r in sent_records(storage, BULK_QUEUE)] == [{"accountnumber": "A-1"}]


def test_a_failed_send_says_which_lines_went_out_and_how_to_resume(cli: Cli, storage, tmp_path):
    rows = "".join(f"A-{i},{'x' * 3000}\n" for i in range(40))  # about 3 KB a record: several messages
    csv = write(tmp_path, "big.csv", "accountnumber,description\n" + rows)

    def failing_after_two(settings):
        adapters = QueueAdapters.from_settings(settings)
        real = adapters.sender.send
        calls = []

        def send(queue: str, text: str, *, delay_seconds: int = 0) -> str:
            calls.append(queue)
            if len(calls) == 3:
                raise ConnectionError("storage unreachable")
            return real(queue, text, delay_seconds=delay_seconds)

        adapters.sender.send = send  # type: ignore[method-assign]
        return adapters

    run = cli("enqueue", str(csv), "--table", "account", "--no-progress", adapters_factory=failing_after_two)
    assert run.code == 1
    sent = sent_records(storage)
    last_line = 1 + len(sent)
    assert f"sent: {len(sent)} records, lines 2-{last_line} of big.csv" in run.err
    assert f"NOT sent: lines {last_line + 1}-41; resume with --from-line {last_line + 1}" in run.err
    run = cli("enqueue", str(csv), "--table", "account", "--no-progress", "--from-line", str(last_line + 1))
    assert run.code == 0
    assert sorted(r["key"]["accountnumber"] for r in sent_records(storage)) == sorted(f"A-{i}" for i in range(40))


def test_the_progress_bar_counts_records(cli: Cli, storage, tmp_path):
    csv = write(tmp_path, "a.csv", "accountnumber\nA-1\nA-2\nA-3\n")
    run = cli("enqueue", str(csv), "--table", "account")
    assert run.code == 0
    assert "3/3" in run.err


def test_unsupported_files_and_missing_settings_are_clear_errors(cli: Cli, tmp_path):
    run = cli("enqueue", str(write(tmp_path, "a.xlsx", "")), "--table", "account")
    assert (run.code, run.err.strip()) == (2, "error: a.xlsx: unsupported file type .xlsx; use .csv or .jsonl")
    del cli.env["DATAVERSE_ENVIRONMENTS"]
    run = cli("enqueue", "x.csv", "--table", "account")
    assert run.code == 2
    assert "DATAVERSE_ENVIRONMENTS" in run.err


def test_a_local_settings_file_completes_the_environment_and_the_environment_wins(cli: Cli, storage, tmp_path):
    values = dict(cli.env)
    cli.env = {"DATAVERSE_CERT_NAME": "from-environment"}
    settings_file = write(tmp_path, "local.settings.json", json.dumps({"IsEncrypted": False, "Values": values}))
    csv = write(tmp_path, "a.csv", "accountnumber\nA-1\n")
    run = cli("--settings", str(settings_file), "enqueue", str(csv), "--table", "account", "--no-progress")
    assert run.code == 0, run.err
    from shared.cli.settings_file import load_settings  # noqa: PLC0415

    assert load_settings(settings_file, cli.env).certificate_name == "from-environment"


def test_python_dash_m_shared_is_the_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "shared", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert "enqueue" in result.stdout
    assert "deadletter" in result.stdout
