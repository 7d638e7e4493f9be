"""Run checkov's Bicep checks over infra/ offline and fail unless the result is clean.

    python infra/tools/checkov_scan.py [--checkov .venv-checkov/bin/checkov] [FOLDER]

Clean means: no failed check, no file checkov could not parse, at least one check evaluated (an empty scan proves
nothing), and every skipped check skipped in the template itself (`// checkov:skip=CKV_...:reason` inside the
resource) with a written reason. Prints a summary, including each skip and its reason. Stdlib only: it runs with any
Python and calls checkov from its own venv (`make infra-scan`).

`--skip-download` keeps checkov offline (without it, it calls the Prisma Cloud API for guidelines); `--framework
bicep` reads .bicep files with pycep-parser. Registry modules (`br/public:...`) would be invisible to it, which is one
reason infra/ declares raw resources.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

MIN_REASON_LENGTH = 30
"""A skip reason shorter than this is a label, not a reason."""


def run_checkov(checkov: str, folder: Path) -> dict[str, Any]:
    command = [checkov, "-d", str(folder), "--framework", "bicep", "--skip-download", "-o", "json"]
    # Exit status 1 only means "failed checks"; the report decides. The command is ours, not user input.
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited with {completed.returncode}: {completed.stderr.strip()[-2000:]}")
    return parse_report(completed.stdout)


def parse_report(stdout: str) -> dict[str, Any]:
    """checkov prints one report object per framework, or a list of them; an empty scan prints a bare summary."""
    report = json.loads(stdout)
    if isinstance(report, list):
        bicep = [r for r in report if isinstance(r, dict) and r.get("check_type") == "bicep"]
        if len(bicep) != 1:
            raise ValueError(f"expected one bicep report, got {len(bicep)}")
        report = bicep[0]
    if not isinstance(report, dict):
        raise ValueError("checkov printed neither a report object nor a list of them")
    return report


def problems(report: dict[str, Any]) -> list[str]:
    """Everything that makes the scan not clean, one readable line each; empty when it is clean."""
    summary = report.get("summary", {})
    results = report.get("results", {})
    found: list[str] = []
    if summary.get("parsing_errors", 0):
        files = ", ".join(results.get("parsing_errors", [])) or "(not named)"
        found.append(f"checkov could not parse {summary['parsing_errors']} file(s): {files}")
    for check in results.get("failed_checks", []):
        found.append(f"FAILED {check['check_id']} {check.get('check_name', '')} on {_where(check)}")
    if not results.get("passed_checks"):
        found.append("no check passed: checkov evaluated nothing, so the scan proves nothing")
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result", {}).get("suppress_comment") or "").strip()
        if len(reason) < MIN_REASON_LENGTH:
            found.append(f"SKIPPED {check['check_id']} on {_where(check)} without a written reason: {reason!r}")
    return found


def skipped(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(check id, resource, reason) of every skip in the templates."""
    return sorted(
        (c["check_id"], _where(c), (c.get("check_result", {}).get("suppress_comment") or "").strip())
        for c in report.get("results", {}).get("skipped_checks", [])
    )


def _where(check: dict[str, Any]) -> str:
    return f"{check.get('resource', '?')} ({check.get('file_path', '?').lstrip('/')})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="infra", type=Path)
    parser.add_argument("--checkov", default=".venv-checkov/bin/checkov", help="checkov executable")
    args = parser.parse_args(argv)

    report = run_checkov(args.checkov, args.folder)
    summary = report.get("summary", {})
    print(
        f"checkov {summary.get('checkov_version', '?')} (bicep, offline) on {args.folder}: "
        f"{summary.get('resource_count', 0)} resources, {summary.get('passed', 0)} passed, "
        f"{summary.get('failed', 0)} failed, {summary.get('skipped', 0)} skipped in the templates"
    )
    for check_id, where, reason in skipped(report):
        print(f"  skip {check_id} on {where}: {reason}")
    found = problems(report)
    for line in found:
        print(f"  PROBLEM: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
