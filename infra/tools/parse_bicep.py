"""Parse every .bicep file under a folder with pycep-parser and print the result as one JSON document.

Runs in the pycep-parser venv (`.venv-pycep`, see infra/tools/pycep-requirements.txt), because checkov pins an older
pycep-parser in its own venv. tests/infra calls it in a subprocess and reads the JSON:

    {"files": {"main.bicep": {...pycep JSON...}, ...}, "errors": {"broken.bicep": "UnexpectedToken: ..."}}

Paths are relative to the folder, with forward slashes. A file that fails to parse is reported under "errors" (the
caller decides); the exit status is 0 unless the folder is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pycep import BicepParser  # type: ignore[import-not-found]  # present in .venv-pycep only


def parse_folder(folder: Path) -> dict[str, dict[str, Any]]:
    parser = BicepParser()
    files: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for path in sorted(folder.rglob("*.bicep")):
        name = path.relative_to(folder).as_posix()
        try:
            files[name] = parser.parse(file_path=path)
        except Exception as exc:  # any parser failure is a finding to report, not a crash
            errors[name] = f"{type(exc).__name__}: {exc}"
    return {"files": files, "errors": errors}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print(f"usage: {argv[0]} FOLDER (a folder holding .bicep files)", file=sys.stderr)
        return 2
    json.dump(parse_folder(Path(argv[1])), sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
