"""End-to-end fixtures: the real function_app.py in the local Functions runner, against the whole local cloud.

One `LocalCloud` per session (Entra ID, managed identity, Key Vault, the Dataverse orgs contoso and fabrikam,
and an Azurite of its own: the app uses its fixed queue names). Every test gets empty queues, empty tables with
no faults and default limits, and a fresh composition root (`bootstrap.reset()`: handlers are cached per process).

Timings are compressed with app settings only, so that the runner (standing in for the host) and the handlers
agree on them exactly as in Azure: host.json values through `AzureFunctionsJobHost__extensions__queues__*`
overrides (functions-host-json#override-hostjson-values), retry delays through the app's own settings. Dataverse
answers without simulated latency (`LatencyModel.zero()`).
"""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from emulators.cloud import LocalCloud
from emulators.dataverse.admin_client import DataverseAdmin
from emulators.dataverse.limits import LatencyModel, ServiceProtectionLimits
from emulators.dataverse.org import Org
from emulators.runner import LocalFunctionsHost
from shared import bootstrap
from shared.queues.adapters import QueueAdapters
from shared.queues.clients import ensure_queues
from shared.queues.deadletter_store import EntryFilter
from shared.queues.names import ALL_QUEUES, RECORDS_QUEUE
from tests.runner.conftest import wait_until as runner_wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORGS = ("contoso", "fabrikam")

# host.json as app settings: the runner applies them like the host, the handlers read the same (maxDequeueCount
# is where the records handler writes its poison envelope; visibilityTimeout its continuation delay).
FAST_HOST_JSON = {
    "AzureFunctionsJobHost__extensions__queues__batchSize": "8",
    "AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:00.200",
    "AzureFunctionsJobHost__extensions__queues__visibilityTimeout": "00:00:01",
    "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "3",
}
FAST_APP_SETTINGS = {
    "SYNC_TIME_BUDGET_SECONDS": "10",  # the minimum: a delivery during an outage gives up within 10 s
    "DATAVERSE_REQUEST_TIMEOUT_SECONDS": "5",
    "DEPENDENCY_RETRY_LIMIT": "2",
    "DEPENDENCY_RETRY_DELAY_SECONDS": "1",
    "POISON_REQUEUE_LIMIT": "1",
    "POISON_REQUEUE_DELAY_SECONDS": "1",
    "BULK_DRAIN_SCHEDULE": "* * * * * *",  # every second
    "HEALTH_CHECK_SCHEDULE": "0 0 6 * * *",  # daily, as deployed; the health test runs it every second
}
# The sample configures account and contact; the custom table with its composite key is added here.
ORDERLINE_TABLE = {"alternate_keys": [["dvs_ordernumber", "dvs_linenumber"]]}


# --- records and messages ------------------------------------------------------------------------------------


def account(number: str, environment: str = "contoso", **data: Any) -> dict[str, Any]:
    return {
        "environment": environment,
        "table": "account",
        "key": {"accountnumber": number},
        "data": {"name": f"Account {number}", **data},
    }


def contact(email: str, parent: str | None = None, environment: str = "contoso", **data: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "environment": environment,
        "table": "contact",
        "key": {"emailaddress1": email},
        "data": {"lastname": email.split("@", maxsplit=1)[0].title(), **data},
    }
    if parent is not None:
        record["lookups"] = {"parentcustomerid_account": {"table": "account", "key": {"accountnumber": parent}}}
    return record


def orderline(order: str, line: int, account_number: str, environment: str = "contoso", **data: Any) -> dict[str, Any]:
    return {
        "environment": environment,
        "table": "dvs_orderline",
        "key": {"dvs_ordernumber": order, "dvs_linenumber": line},
        "data": {"dvs_name": f"{order}/{line}", **data},
        "lookups": {"dvs_accountid": {"table": "account", "key": {"accountnumber": account_number}}},
    }


def envelope(*records: Any) -> dict[str, Any]:
    return {"schema": "dataverse-sync/v1", "records": list(records)}


# The runner tests' helper, with more time: conditions here wait on the whole pipeline and read Azurite and the
# emulators, so they are polled less often.
wait_until = functools.partial(runner_wait_until, timeout=20.0, interval=0.05)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The fields of every sync-core log event `name` caught (shared/sync/logs.py: extra dvsync_event, dvsync)."""
    return [record.dvsync for record in caplog.records if getattr(record, "dvsync_event", None) == name]  # type: ignore[attr-defined]


# --- the pipeline --------------------------------------------------------------------------------------------


@dataclass
class CliRun:
    code: int
    out: str
    err: str


class Pipeline:
    """The local cloud with the app's queues, and the real function_app.py in the local runner."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        assert cloud.azurite_connection_string is not None
        assert cloud.dataverse_admin_url is not None
        # The Dataverse emulator's admin API: changes state on the servers' loop, safe while requests run.
        self.admin = DataverseAdmin(cloud.dataverse_admin_url, ca_bundle=str(cloud.ca.ca_bundle))
        self.service = QueueServiceClient.from_connection_string(cloud.azurite_connection_string)
        ensure_queues(self.service, ALL_QUEUES)
        self.queues = QueueAdapters.on(self.service)
        self.base_settings = {**cloud.app_settings(), **FAST_HOST_JSON, **FAST_APP_SETTINGS}
        environments = json.loads(self.base_settings["DATAVERSE_ENVIRONMENTS"])
        for environment in environments.values():
            environment["tables"]["dvs_orderline"] = ORDERLINE_TABLE
        self.base_settings["DATAVERSE_ENVIRONMENTS"] = json.dumps(environments)

    # --- state ------------------------------------------------------------------------------------------------

    def org(self, name: str = "contoso") -> Org:
        org: Org = self.cloud.dataverse.org(name)
        return org

    def reset(self) -> None:
        """Empty queues and tables, no faults, default limits, no latency, and a composition root to build."""
        bootstrap.reset()
        for name in ALL_QUEUES:
            self.service.get_queue_client(name).clear_messages()
        for name in ORGS:
            org = self.org(name)
            org.reset()
            org.set_limits(**asdict(ServiceProtectionLimits()))
            org.set_latency(LatencyModel.zero())

    def settings(self, **overrides: str) -> dict[str, str]:
        return {**self.base_settings, **overrides}

    # --- producing --------------------------------------------------------------------------------------------

    def send(self, message: Any, queue: str = RECORDS_QUEUE) -> str:
        """A message as producers must send it: the UTF-8 JSON, base64-encoded once."""
        text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        return self.queues.sender.send(queue, text)

    def send_raw(self, content: str, queue: str = RECORDS_QUEUE) -> str:
        """Exactly `content` on the queue, no encoding applied (as a producer that forgot base64)."""
        return str(self.service.get_queue_client(queue).send_message(content).id)

    def send_bytes(self, body: bytes, queue: str = RECORDS_QUEUE) -> str:
        """Arbitrary bytes as the body (base64 of them on the queue), e.g. text that is not UTF-8."""
        return self.send_raw(base64.b64encode(body).decode("ascii"), queue)

    # --- running ----------------------------------------------------------------------------------------------

    @contextmanager
    def running(self, **settings: str) -> Iterator[LocalFunctionsHost]:
        """The runner with function_app.py; stopped (and the composition root forgotten) on exit."""
        host = LocalFunctionsHost(
            app="function_app:app", root=PROJECT_ROOT, settings_overrides=self.settings(**settings)
        )
        host.start()
        try:
            yield host
        finally:
            host.stop(grace=5.0)
            bootstrap.reset()

    def run_until_idle(
        self, *, timeout: float = 40.0, idle_seconds: float = 0.3, **settings: str
    ) -> LocalFunctionsHost:
        """Start the runner, wait until the trigger queues are empty and nothing runs, stop it."""
        with self.running(**settings) as host:
            host.run_until_idle(idle_seconds=idle_seconds, timeout=timeout)
        return host

    # --- reading ----------------------------------------------------------------------------------------------

    def dead_letters(self, **conditions: str) -> list[dict[str, Any]]:
        """Dead-letter entries in their documented JSON form (docs/message-contract.md#dead-letter-entries)."""
        stored = self.queues.dead_letters.select(EntryFilter(**conditions))
        return [json.loads(entry.text) for entry in stored]

    def depth(self, queue: str) -> int:
        return self.queues.depth.approximate_count(queue)

    def queue_depths(self) -> dict[str, int]:
        return {name: self.depth(name) for name in ALL_QUEUES}

    def cli(self, *argv: str) -> CliRun:
        """The operator CLI (`python -m shared ...`) with the app's settings."""
        from shared.cli.main import main  # noqa: PLC0415 - the CLI module is only needed by the tests using it

        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), environ=self.settings(), out=out, err=err, ask=lambda prompt: "n")
        return CliRun(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with LocalCloud(tmp_path_factory.mktemp("e2e-cloud"), with_azurite=True, with_dataverse=True) as cloud:
        yield cloud


@pytest.fixture(scope="session")
def session_pipeline(local_cloud: LocalCloud) -> Iterator[Pipeline]:
    pipeline = Pipeline(local_cloud)
    yield pipeline
    pipeline.admin.close()


@pytest.fixture
def pipeline(session_pipeline: Pipeline) -> Pipeline:
    session_pipeline.reset()
    return session_pipeline


def row_values(rows: list[dict[str, Any]], *columns: str) -> dict[Any, tuple[Any, ...]]:
    """Rows as {first column: (other columns...)}: compares data, not server-maintained columns."""
    return {row[columns[0]]: tuple(row.get(c) for c in columns[1:]) for row in rows}
