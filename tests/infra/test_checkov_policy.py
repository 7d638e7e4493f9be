"""checkov runs in `make infra-scan` (infra/tools/checkov_scan.py); these tests pin its verdict logic and the rule that
every skip lives in the template with a written reason and is listed in the deployment guide."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType
from typing import Any

import pytest

from tests.infra.bicep import INFRA

SKIP = re.compile(r"checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?")


def load_scan() -> ModuleType:
    spec = importlib.util.spec_from_file_location("checkov_scan", INFRA / "tools" / "checkov_scan.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(**results: list[dict[str, Any]]) -> dict[str, Any]:
    passed = results.get("passed_checks", [{"check_id": "CKV_AZURE_3", "resource": "storage"}])
    return {
        "check_type": "bicep",
        "summary": {"parsing_errors": len(results.get("parsing_errors", []))},
        "results": {
            "passed_checks": passed,
            "failed_checks": results.get("failed_checks", []),
            "skipped_checks": results.get("skipped_checks", []),
            "parsing_errors": results.get("parsing_errors", []),
        },
    }


def skip(check_id: str, reason: str | None) -> dict[str, Any]:
    return {
        "check_id": check_id,
        "resource": "r",
        "file_path": "/x.bicep",
        "check_result": {"suppress_comment": reason},
    }


def test_clean_report_has_no_problems() -> None:
    scan = load_scan()
    assert (
        scan.problems(report(skipped_checks=[skip("CKV_AZURE_35", "No VNet integration in this template, so ...")]))
        == []
    )


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (
            {"failed_checks": [{"check_id": "CKV_AZURE_44", "resource": "st", "file_path": "/s.bicep"}]},
            "FAILED CKV_AZURE_44",
        ),
        ({"parsing_errors": ["/infra/broken.bicep"]}, "could not parse"),
        ({"passed_checks": []}, "evaluated nothing"),
        ({"skipped_checks": [skip("CKV_AZURE_35", None)]}, "without a written reason"),
        ({"skipped_checks": [skip("CKV_AZURE_35", "n/a")]}, "without a written reason"),
    ],
)
def test_anything_unclean_is_a_problem(results: dict[str, Any], expected: str) -> None:
    found = load_scan().problems(report(**results))
    assert len(found) == 1
    assert expected in found[0]


def test_report_parsing_accepts_checkovs_list_form() -> None:
    scan = load_scan()
    single = '{"check_type": "bicep", "summary": {}, "results": {}}'
    assert scan.parse_report(f"[{single}]")["check_type"] == "bicep"
    assert scan.parse_report(single)["check_type"] == "bicep"


def template_skips() -> list[tuple[str, str, str]]:
    """(file, check id, reason) of every checkov:skip comment in the templates."""
    found = []
    for path in sorted(INFRA.rglob("*.bicep")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if match := SKIP.search(line):
                assert line.startswith("  //"), f"{path.name}: a skip must sit inside the resource it applies to"
                found.append((path.name, match.group(1), (match.group(2) or "").strip()))
    return found


def test_every_skip_in_the_templates_has_a_reason() -> None:
    skips = template_skips()
    assert skips, "expected the documented skips (network isolation, Flex-specific checks)"
    for file, check_id, reason in skips:
        assert len(reason) >= load_scan().MIN_REASON_LENGTH, f"{file}: {check_id} needs a written reason"


def test_deployment_guide_lists_every_skipped_check() -> None:
    guide = (INFRA / "README.md").read_text(encoding="utf-8")
    for file, check_id, _ in template_skips():
        assert check_id in guide, f"infra/README.md does not explain the skip of {check_id} ({file})"
