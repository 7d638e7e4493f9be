"""Every template parses with pycep-parser 0.7.1 and main.bicep wires every module it ships."""

from __future__ import annotations

from typing import Any

from tests.infra.bicep import INFRA, INTERPOLATION, access_path, walk


def test_every_bicep_file_parses(parsed: dict[str, Any]) -> None:
    on_disk = {path.relative_to(INFRA).as_posix() for path in INFRA.rglob("*.bicep")}
    assert parsed["errors"] == {}
    assert set(parsed["files"]) == on_disk
    assert {"main.bicep", "storage.bicep", "keyvault.bicep", "functionapp.bicep", "roles.bicep"} <= on_disk


def test_main_uses_every_module_and_only_local_ones(main: dict[str, Any], templates: dict[str, Any]) -> None:
    modules = main["modules"]
    # Registry modules (br/public:...) are invisible to checkov; the issue asks for raw resources.
    assert all(module["type"] == "local" for module in modules.values())
    used = {module["detail"]["path"] for module in modules.values()}
    assert used == set(templates) - {"main.bicep"}


def test_module_parameters_match_the_module_files(main: dict[str, Any], templates: dict[str, Any]) -> None:
    for symbol, module in main["modules"].items():
        declared = templates[module["detail"]["path"]]["parameters"]
        given = module["config"]["params"]
        assert set(given) <= set(declared), f"module {symbol} passes unknown parameters {set(given) - set(declared)}"
        required = {name for name, p in declared.items() if p["default"] is None}
        assert required <= set(given), f"module {symbol} misses required parameters {required - set(given)}"


def test_referenced_module_outputs_exist(main: dict[str, Any], templates: dict[str, Any]) -> None:
    modules = {symbol: templates[m["detail"]["path"]] for symbol, m in main["modules"].items()}
    references = [path for node in walk(main) if (path := _maybe_path(node))]
    references += [text.split(".") for node in walk(main) if isinstance(node, str) for text in _interpolations(node)]
    checked = 0
    for path in references:
        if len(path) >= 3 and path[0] in modules and path[1] == "outputs":
            assert path[2] in modules[path[0]]["outputs"], f"{'.'.join(path)} is not an output of {path[0]}"
            checked += 1
    assert checked >= 10


def _maybe_path(node: Any) -> list[str] | None:
    try:
        return access_path(node)
    except ValueError:
        return None


def _interpolations(text: str) -> list[str]:
    return INTERPOLATION.findall(text)
