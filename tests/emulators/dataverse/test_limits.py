"""Issue 4 item 7: service protection limits per application user (PAD/api-limits.md) and the latency model.
Windows are compressed to about a second so that recovery is observed quickly."""

from __future__ import annotations

import threading
import time

import requests

from tests.emulators.dataverse.conftest import READ_ONLY_APP, Api, Cloud, error_of


def wait_for(response: requests.Response) -> None:
    time.sleep(int(response.headers["Retry-After"]) + 0.05)


def test_request_limit_429_then_recovery(cloud: Cloud, api: Api) -> None:
    cloud.org().set_limits(requests=5, window_seconds=1.0)
    remaining = [int(api.get("WhoAmI").headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    throttled = api.get("WhoAmI")
    assert throttled.status_code == 429
    assert error_of(throttled) == {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 5 over time window of 1 seconds.",
    }
    assert 1 <= int(throttled.headers["Retry-After"]) <= 1
    # Limits are per application user: another one is not throttled.
    assert cloud.api(app_id=READ_ONLY_APP).get("WhoAmI").status_code == 200
    wait_for(throttled)
    assert api.get("WhoAmI").status_code == 200
    assert cloud.org().counters.throttled["0x80072322"] == 1


def test_execution_time_limit(cloud: Cloud, api: Api) -> None:
    org = cloud.org()
    org.set_limits(execution_ms=100, window_seconds=1.0)
    org.set_latency(base_ms=60.0, scale=1.0)
    assert api.get("WhoAmI").status_code == 200
    second = api.get("WhoAmI")
    assert second.status_code == 200  # 60 ms used: not exceeded yet
    assert second.headers["x-ms-ratelimit-time-remaining-xrm-requests"] == "0.00"
    throttled = api.get("WhoAmI")
    assert throttled.status_code == 429
    assert error_of(throttled)["code"] == "0x80072321"
    assert error_of(throttled)["message"].startswith(
        "Combined execution time of incoming requests exceeded limit of 100  milliseconds over time window of 1 "
        "seconds."
    )
    wait_for(throttled)
    assert api.get("WhoAmI").status_code == 200


def test_concurrency_limit_trips_immediately(cloud: Cloud) -> None:
    org = cloud.org()
    org.set_limits(concurrency=2)
    org.set_latency(base_ms=400.0, scale=1.0)
    statuses: list[int] = []
    codes: list[str] = []

    def call() -> None:
        client = cloud.api()
        client.session = requests.Session()  # each thread its own connection
        response = client.get("WhoAmI")
        statuses.append(response.status_code)
        if response.status_code == 429:
            codes.append(error_of(response)["code"])

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 429, 429, 429]
    assert set(codes) == {"0x80072326"}
    org.set_latency(scale=0.0)
    assert cloud.api().get("WhoAmI").status_code == 200


def test_latency_model_delays_responses_and_bulk_is_cheaper_than_batch(cloud: Cloud, api: Api) -> None:
    org = cloud.org()
    org.set_latency(base_ms=80.0, write_ms=20.0, bulk_record_ms=4.0, batch_operation_ms=2.0, scale=1.0)
    started = time.monotonic()
    assert api.get("WhoAmI").status_code == 200
    assert time.monotonic() - started >= 0.08
    org.set_latency(scale=0.0001)  # keep the model's proportions, make it fast
    org.reset(data=False, faults=False, throttle=False)
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": f"b{i}"} for i in range(50)]
    api.post("accounts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    bulk_ms = org.counters.execution_ms
    parts = "".join(
        "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f'POST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{"name":"c{i}"}}\r\n'
        for i in range(50)
    )
    response = api.post(
        "$batch", data=(parts + "--b--\r\n").encode(), headers={"Content-Type": "multipart/mixed; boundary=b"}
    )
    assert response.status_code == 200
    batch_ms = org.counters.execution_ms - bulk_ms
    assert bulk_ms < batch_ms
    assert org.count("account") == 100
    assert org.counters.requests["$batch"] == 1
