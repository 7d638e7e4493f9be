"""The bundled sample data: up to date with its generator, valid for the CLI, and invalid where it says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sample_data import generate
from shared.config.settings import EnvironmentConfig
from shared.sync import RecordsHandler, SyncEngine, SyncPolicy
from shared.sync.catalog import Catalog
from shared.sync.ports import IncomingMessage
from tests.cli.conftest import Cli
from tests.sync.fakes import FakeClock, FakeWriter, MemoryDeadLetters, MemorySender

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


def sample_environments() -> dict[str, EnvironmentConfig]:
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    raw = json.loads(values["DATAVERSE_ENVIRONMENTS"])
    return {name: EnvironmentConfig.model_validate(config) for name, config in raw.items()}


def test_the_committed_files_match_the_generator():
    assert generate.main(["--check"]) == 0


@pytest.mark.azurite
@pytest.mark.parametrize(
    ("file", "table", "records"), [("accounts.csv", "account", 1200), ("contacts.jsonl", "contact", 2424)]
)
def test_the_record_files_pass_the_cli_validation(cli: Cli, file, table, records):
    cli.env["DATAVERSE_ENVIRONMENTS"] = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"][
        "DATAVERSE_ENVIRONMENTS"
    ]
    run = cli("enqueue", str(SAMPLE / file), "--table", table, "--dry-run")
    assert run.code == 0, run.err
    assert f"{records} records are valid" in run.out


@pytest.mark.parametrize("case", [json.loads(line) for line in (SAMPLE / "invalid_messages.jsonl").open()],
                         ids=lambda case: case["name"])  # fmt: skip
def test_each_invalid_message_ends_as_the_dead_letters_it_promises(case):
    writer, dead_letters = FakeWriter(), MemoryDeadLetters()
    engine = SyncEngine(writer=writer, dead_letters=dead_letters, sender=MemorySender(), clock=FakeClock(),
                        catalog=Catalog(sample_environments()), policy=SyncPolicy())  # fmt: skip
    handler = RecordsHandler(engine)
    error = "not base64 (host.json messageEncoding=base64)" if case.get("raw") else None
    handler.handle(IncomingMessage("m", case["body"].encode(), 1, "dvsync-records", encoding_error=error))
    assert sorted(dead_letters.codes()) == sorted(case["expect"])
    assert len(writer.written) == case["valid"]
