"""The demo's printed summary: grouped dead-letter reasons with an example, traffic, the result line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from emulators.dataverse.schema import Schema
from emulators.demo.expectations import expect_rows
from emulators.demo.summary import DemoReport, EpisodeReport, RouteReport, render, requests_sent
from emulators.demo.verify import Verdict
from shared.sync.problems import ReasonKind
from tests.demo.conftest import account, dead_letter, sent

COUNTERS = {
    "requests": {"UpsertMultiple": 40, "$batch": 3},
    "responses": {"204": 40, "200": 3, "429": 6, "503": 4},
    "throttled": {"0x80072322": 2, "0x80072321": 2, "0x80072326": 2},
    "faults": {"429": 6, "503": 4, "reset": 1},
}


def report(verdict: Verdict) -> DemoReport:
    records = [account("A"), account("B"), account("BAD", name="x" * 161)]
    refused = dead_letter(records[2], ReasonKind.REJECTED, "dataverse_rejected", dataverse_code="0x80044331")
    raw = dead_letter(None, ReasonKind.INVALID_MESSAGE, "invalid_json", message_id="raw-1")
    verdict.data_dead_letters.append(refused)
    verdict.message_dead_letters.append(raw)
    return DemoReport(
        routes=[RouteReport("contoso", "dvsync-records", 3, 1)],
        invalid_names={"raw-1": "not JSON"},
        expected=expect_rows(sent(records), Schema.load()),
        verdict=verdict,
        counters={"contoso": COUNTERS},
        episode=EpisodeReport(
            "contoso",
            [{"kind": "429", "count": 2, "limit_code": "0x80072322"}, {"kind": "503", "count": 4}],
            injected_at=2.5,
        ),
        events={"record.superseded": 3, "record.parent_missing": 7},
        first_events={"record.written": {"message_id": "m-1", "ref": "m-1:0", "request_id": "req-9"}},
        function_stats={"sync_records": {"invocations": 5, "failures": 0}, "drain_bulk": {"timer_runs": 4}},
        cloud_seconds=0.5,
        enqueue_seconds=0.4,
        sync_seconds=2.0,
        total_seconds=3.2,
        log_path=Path("/tmp/demo.log"),
    )


def test_the_summary_groups_dead_letters_shows_traffic_and_says_ok():
    verdict = Verdict(landed=Counter({("contoso", "account"): 2}))
    text = render(report(verdict))
    assert "  contoso      dvsync-records   account              3              2           2" in text
    assert "Dead-lettered: 2 entries" in text
    assert "rejected/dataverse_rejected" in text
    assert "contoso/account BAD: 400 0x80044331 refused" in text
    assert "invalid_message/invalid_json" in text
    assert '"not JSON": invalid_json happened' in text
    assert "re-sent later because the parent was not there yet: 7" in text
    assert "429s 6 (0x80072322 x2, 0x80072321 x2, 0x80072326 x2)" in text
    assert "throttling episode on contoso at t=2.5s: 429 0x80072322 x2, then 503 x4" in text
    assert "6 x 429 and 5 outage faults survived" in text
    assert "2 rows written in 2.0 s = 1 rows/s" in text
    assert "message m-1 → record m-1:0 → Dataverse request req-9" in text
    assert text.splitlines()[-1].startswith("RESULT: OK — all 2 rows")


def test_a_failed_verdict_lists_its_problems_and_the_figures_say_so():
    verdict = Verdict(problems=[f"problem {n}" for n in range(20)])
    demo = report(verdict)
    lines = render(demo).splitlines()
    assert "RESULT: FAILED — 20 problem(s):" in lines
    assert "  - problem 14" in lines
    assert "  - problem 15" not in lines
    assert lines[-1] == "  ... and 5 more"
    figures = demo.figures()
    assert (figures["ok"], figures["problems"], figures["dead_lettered"]) == (False, 20, 2)
    assert figures["http_requests"] == requests_sent(COUNTERS) == 54  # 53 responses and a connection reset
    assert figures["throttled_responses"] == 6
