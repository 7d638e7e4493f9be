"""Import rules from DEVELOPERS.md: shared/ never imports emulators/, and the sync core imports no Azure SDK or
HTTP library (it is pure, tested fast, and talks to the world through shared/sync/ports.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", [*python_files("shared"), ROOT / "function_app.py"], ids=str)
def test_app_code_never_imports_the_local_cloud(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m == "emulators" or m.startswith("emulators.")}
    assert not bad, f"{path} imports {bad}"


FORBIDDEN_IN_CORE = ("azure", "requests", "urllib3", "http", "httpx", "aiohttp", "socket")


@pytest.mark.parametrize("path", python_files("shared/sync"), ids=str)
def test_sync_core_is_pure(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN_IN_CORE}
    assert not bad, f"{path} imports {bad}"


def test_the_rules_see_imports() -> None:
    """Guard against a checker that silently finds nothing."""
    assert "emulators.tls" in imported_modules(ROOT / "tests" / "conftest.py")
