"""main.parameters.json deploys main.bicep as is, and the alerts watch what the app logs."""

from __future__ import annotations

import ast
import re
from typing import Any

from tests.infra.bicep import ROOT, access_path, resources

TYPES = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}


def test_parameters_file_fits_main(main: dict[str, Any], parameters_file: dict[str, Any]) -> None:
    assert parameters_file["$schema"].endswith("/deploymentParameters.json#")
    given = parameters_file["parameters"]
    declared = main["parameters"]
    assert set(given) <= set(declared), f"unknown parameters: {set(given) - set(declared)}"
    required = {name for name, parameter in declared.items() if parameter["default"] is None}
    assert required <= set(given), f"missing required parameters: {required - set(given)}"
    for name, entry in given.items():
        expected = TYPES[declared[name]["type"]]
        assert isinstance(entry["value"], expected), name
        assert expected is bool or not isinstance(entry["value"], bool), name


def test_name_prefix_fits_the_storage_account_name(main: dict[str, Any], parameters_file: dict[str, Any]) -> None:
    prefix = parameters_file["parameters"]["namePrefix"]["value"]
    assert re.fullmatch(r"[a-z0-9]{2,9}", prefix)
    bounds = {d["type"]: d["argument"] for d in main["parameters"]["namePrefix"]["decorators"]}
    # 'st' + prefix + uniqueString (13 characters) must fit the 24-character limit of storage account names.
    assert 2 + bounds["max_length"] + 13 <= 24


def test_dead_letter_alert_queries_the_apps_dead_letter_log_lines(templates: dict[str, Any]) -> None:
    rules = {r.symbol: r.body for r in resources(templates, "Microsoft.Insights/scheduledQueryRules")}
    assert set(rules) == {"deadLetterAlert", "failureAlert"}
    dead_letters = rules["deadLetterAlert"]["properties"]
    condition = dead_letters["criteria"]["allOf"][0]
    assert condition["query"] == 'traces | where message matches regex "(?i)${deadLetterLogPattern}"'
    assert (condition["timeAggregation"], condition["operator"], condition["threshold"]) == ("Count", "GreaterThan", 0)
    pattern = re.compile(f"(?i){templates['main.bicep']['parameters']['deadLetterLogPattern']['default']}")
    # Every log event the sync core emits (shared/sync, `event(log, level, "<name>", **fields)`; the name starts the
    # line): those that report a dead-letter entry (an `entry` field) must fire the alert, no other may.
    events = sync_core_events()
    dead_letter_events = {name for name, fields in events.items() if "entry" in fields}
    assert dead_letter_events >= {"record.dead_lettered"}
    for name in events:
        line = f"{name} ref=r1 reason=example"
        assert bool(pattern.search(line)) == (name in dead_letter_events), name
    assert not pattern.search(
        'health.dead_letters_present reason="dvsync-deadletter holds about 3 dead-letter entries"'
    )


def sync_core_events() -> dict[str, set[str]]:
    """Event name -> field names, for every `event(...)` call with a literal name in shared/sync."""
    events: dict[str, set[str]] = {}
    for path in (ROOT / "shared" / "sync").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "event" and len(node.args) >= 3:
                name = node.args[2]
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    events.setdefault(name.value, set()).update(k.arg for k in node.keywords if k.arg)
    return events


def test_alerts_run_on_application_insights_every_15_minutes(templates: dict[str, Any]) -> None:
    for rule in resources(templates, "Microsoft.Insights/scheduledQueryRules"):
        properties = rule.body["properties"]
        assert properties["scopes"] == ["applicationInsightsId"]
        assert (properties["evaluationFrequency"], properties["windowSize"]) == ("PT15M", "PT15M")
        assert properties["enabled"] is True
        assert properties["actions"] == "alertActions"
    failures = next(
        r for r in resources(templates, "Microsoft.Insights/scheduledQueryRules") if r.symbol == "failureAlert"
    )
    query = failures.body["properties"]["criteria"]["allOf"][0]["query"]
    assert "requests | where success == false" in query
    assert "severityLevel >= 3" in query
    main_params = templates["main.bicep"]["modules"]["alerts"]["config"]["params"]
    assert access_path(main_params["applicationInsightsId"]) == ["monitoring", "outputs", "applicationInsightsId"]


def test_action_group_only_when_an_address_is_given(templates: dict[str, Any]) -> None:
    (group,) = resources(templates, "Microsoft.Insights/actionGroups")
    assert group.condition["operator"]["type"] == "not"
    assert group.body["properties"]["emailReceivers"][0]["emailAddress"] == "alertEmailAddress"
