"""CLI tests use an Azurite of their own: the CLI works on the app's fixed queue names (dvsync-*), which other
test folders' end-to-end runs also use on the session Azurite."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from emulators import seed
from emulators.azurite import Azurite
from shared.queues.clients import ensure_queues
from shared.queues.names import ALL_QUEUES


@pytest.fixture(scope="module")
def own_azurite() -> Iterator[Azurite]:
    with Azurite() as running:
        yield running


@pytest.fixture
def storage(own_azurite: Azurite) -> QueueServiceClient:
    """The app's queues, created and emptied for each test."""
    service = QueueServiceClient.from_connection_string(own_azurite.connection_string)
    ensure_queues(service, ALL_QUEUES)
    for name in ALL_QUEUES:
        service.get_queue_client(name).clear_messages()
    return service


ENVIRONMENTS = {
    "contoso": {
        "url": "https://contoso.example",
        "tenant_id": seed.CONTOSO_TENANT_ID,
        "tables": {
            "account": {"alternate_keys": [["accountnumber"]]},
            "contact": {"alternate_keys": [["emailaddress1"]]},
        },
    }
}


def app_env(connection_string: str, **extra: str) -> dict[str, str]:
    env = {
        "SYNC_STORAGE": connection_string,
        "KEYVAULT_URL": "https://vault.example",
        "DATAVERSE_CLIENT_ID": seed.DATAVERSE_APP_CLIENT_ID,
        "DATAVERSE_CERT_NAME": seed.CERTIFICATE_NAME,
        "DATAVERSE_ENVIRONMENTS": json.dumps(ENVIRONMENTS),
    }
    env.update(extra)
    return env


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    env: dict[str, str]
    answers: list[str] = field(default_factory=list)

    def __call__(self, *argv: str, **kwargs: Any) -> Run:
        from shared.cli.main import main  # noqa: PLC0415 - imported per call so monkeypatched names apply

        out, err = io.StringIO(), io.StringIO()
        ask: Callable[[str], str] = lambda prompt: self.answers.pop(0)  # noqa: E731
        code = main(list(argv), environ=self.env, out=out, err=err, ask=ask, **kwargs)
        return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(storage: QueueServiceClient, own_azurite: Azurite) -> Cli:
    return Cli(app_env(own_azurite.connection_string))
