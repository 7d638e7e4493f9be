"""CPU cost of the Dataverse emulator per 1000 upserted records (issue 4 item 9).

Two measurements, both with the latency model off (latency is asyncio.sleep and costs no CPU anyway):

- in-process: the emulator's ASGI app called directly (request parsing, auth, limits, validation, indexes,
  JSON), no sockets: `time.process_time()` around the calls;
- server process: the emulator served over HTTPS by uvicorn in a child process, driven by `requests` from this
  process; the child's CPU time (psutil) covers TLS, HTTP parsing and the emulator.

Scenarios: UpsertMultiple of 1000 new rows and of 1000 existing rows (composite alternate key), 1000 single
PATCH upserts by key, and 10 `$batch` requests of 100 PATCH upserts. Prints a table, then one JSON line.

    .venv/bin/python -m bench.emulator_cost [--records 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import requests

from emulators import seed
from emulators.dataverse import DataverseEmulator, EmulatorConfig, add_demo_orgs
from emulators.dataverse.app import OrgApp
from emulators.tokens import TokenAuthority

ORDERLINE = "Microsoft.Dynamics.CRM.dvs_orderline"
ROOT = "/api/data/v9.2"


# --- workloads: (method, path, body, headers) per HTTP request ------------------------------------------------

Request = tuple[str, str, bytes, dict[str, str]]


def _target(order: str, line: int, product: str) -> dict[str, Any]:
    return {
        "@odata.type": ORDERLINE,
        "@odata.id": f"dvs_orderlines(dvs_ordernumber='{order}',dvs_linenumber={line})",
        "dvs_product": product,
        "dvs_quantity": line % 7 + 1,
        "dvs_unitprice": 9.99,
        "dvs_status": 1,
    }


def upsert_multiple(records: int, order: str, product: str) -> list[Request]:
    body = json.dumps({"Targets": [_target(order, n, product) for n in range(records)]}).encode()
    return [("POST", f"{ROOT}/dvs_orderlines/Microsoft.Dynamics.CRM.UpsertMultiple", body, {})]


def single_upserts(records: int, order: str) -> list[Request]:
    return [
        (
            "PATCH",
            f"{ROOT}/dvs_orderlines(dvs_ordernumber='{order}',dvs_linenumber={n})",
            json.dumps({"dvs_product": "Single", "dvs_quantity": 2}).encode(),
            {},
        )
        for n in range(records)
    ]


def batches(records: int, order: str, size: int = 100) -> list[Request]:
    requests_ = []
    for start in range(0, records, size):
        parts = []
        for n in range(start, min(start + size, records)):
            payload = json.dumps({"dvs_product": "Batch", "dvs_quantity": 3})
            parts.append(
                "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                f"PATCH dvs_orderlines(dvs_ordernumber='{order}',dvs_linenumber={n}) HTTP/1.1\r\n"
                f"Content-Type: application/json\r\n\r\n{payload}\r\n"
            )
        body = ("".join(parts) + "--b--\r\n").encode()
        requests_.append(("POST", f"{ROOT}/$batch", body, {"Content-Type": "multipart/mixed; boundary=b"}))
    return requests_


def scenarios(records: int, run: int) -> Iterator[tuple[str, list[Request]]]:
    order = f"SO-{run}"
    yield "UpsertMultiple, new rows", upsert_multiple(records, order, "New")
    yield "UpsertMultiple, existing rows", upsert_multiple(records, order, "Changed")
    yield "PATCH upsert by key (1 per request)", single_upserts(records, f"{order}-single")
    yield "$batch of 100 PATCH upserts", batches(records, f"{order}-batch")


# --- in-process --------------------------------------------------------------------------------------------


def in_process(records: int, repeat: int) -> dict[str, float]:
    authority = TokenAuthority()
    emulator = DataverseEmulator(authority, config=EmulatorConfig.fast())
    add_demo_orgs(emulator)
    url = "https://127.0.0.1:1"
    emulator.set_org_url("contoso", url)
    app = emulator.org_app("contoso")
    token = _token(authority, url)
    results: dict[str, list[float]] = {}
    for run in range(repeat):
        for name, workload in scenarios(records, run):
            cpu = asyncio.run(_drive_asgi(app, token, workload))
            results.setdefault(name, []).append(cpu)
    return {name: min(values) * 1000 * 1000 / records for name, values in results.items()}


async def _drive_asgi(app: OrgApp, token: str, workload: list[Request]) -> float:
    started = time.process_time()
    for method, path, body, headers in workload:
        status = await _asgi_call(app, token, method, path, body, headers)
        if status >= 400:
            raise RuntimeError(f"{method} {path} answered {status}")
    return time.process_time() - started


async def _asgi_call(app: OrgApp, token: str, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    all_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers}
    raw = [(k.lower().encode(), v.encode()) for k, v in all_headers.items()]
    path_part, _, query = path.partition("?")
    scope = {"type": "http", "method": method, "path": path_part, "query_string": query.encode(), "headers": raw}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def _token(authority: TokenAuthority, url: str) -> str:
    tenant = seed.CONTOSO_TENANT_ID
    return authority.issue(
        tenant_id=tenant,
        audience=url,
        app_id=seed.DATAVERSE_APP_CLIENT_ID,
        object_id=seed.DATAVERSE_APP_OBJECT_IDS[tenant],
    ).access_token


# --- server process --------------------------------------------------------------------------------------------


def serve(ready_file: Path) -> None:
    """Child process: host contoso over HTTPS until stdin closes; write url, CA and a token to `ready_file`."""
    from emulators.servers import ServerGroup  # noqa: PLC0415 - child only
    from emulators.tls import LocalCA  # noqa: PLC0415

    ca = LocalCA.create(ready_file.parent / "ca")
    authority = TokenAuthority()
    emulator = DataverseEmulator(authority, config=EmulatorConfig.fast())
    add_demo_orgs(emulator)
    group = ServerGroup(ca)
    url = group.add("contoso", emulator.org_app("contoso"))
    emulator.set_org_url("contoso", url)
    group.start()
    try:
        ready_file.write_text(json.dumps({"url": url, "ca": str(ca.ca_bundle), "token": _token(authority, url)}))
        sys.stdin.read()
    finally:
        group.stop()


def server_process(records: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        ready = Path(scratch) / "ready.json"
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.emulator_cost", "--serve", str(ready)],
            stdin=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            info = _wait_ready(ready, child)
            process = psutil.Process(child.pid)
            session = requests.Session()
            headers = {"Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"}
            # psutil reads the child's CPU in 10 ms ticks: sum over all runs, then divide.
            totals: dict[str, float] = {}
            for run in range(repeat):
                for name, workload in scenarios(records, run):
                    cpu = _measure(process, functools.partial(_drive_http, session, info, headers, workload))
                    totals[name] = totals.get(name, 0.0) + cpu
            return {name: total * 1000 * 1000 / (records * repeat) for name, total in totals.items()}
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=20)


def _wait_ready(ready: Path, child: subprocess.Popen[bytes]) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ready.exists() and ready.stat().st_size:
            data: dict[str, str] = json.loads(ready.read_text())
            return data
        if child.poll() is not None:
            raise RuntimeError("emulator process exited early")
        time.sleep(0.05)
    raise TimeoutError("emulator process did not start")


def _measure(process: psutil.Process, work: Callable[[], None]) -> float:
    before = process.cpu_times()
    work()
    after = process.cpu_times()
    return float((after.user - before.user) + (after.system - before.system))


def _drive_http(
    session: requests.Session, info: dict[str, str], headers: dict[str, str], workload: list[Request]
) -> None:
    for method, path, body, extra in workload:
        response = session.request(
            method, info["url"] + path, data=body, headers={**headers, **extra}, verify=info["ca"], timeout=60
        )
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per scenario (in-process: best; server: mean)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    local = in_process(args.records, args.repeat)
    served = server_process(args.records, args.repeat)
    print(f"Dataverse emulator CPU per {args.records} records, ms ({args.repeat} runs; {os.cpu_count()} CPUs)")
    print(f"{'scenario':<40}{'in-process':>12}{'server process':>16}")
    for name in local:
        print(f"{name:<40}{local[name]:>12.1f}{served[name]:>16.1f}")
    print(json.dumps({"records": args.records, "cpu_ms_per_1000_in_process": local, "cpu_ms_per_1000_server": served}))


if __name__ == "__main__":
    main()
