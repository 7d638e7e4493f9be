"""Fixtures for the infrastructure tests: the templates parsed once per session (pycep-parser 0.7.1 runs in its own
venv, see infra/tools/parse_bicep.py), the parameters file, and main.bicep's app settings resolved with fake module
outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.bicep import FAKE_OUTPUTS, INFRA, Resolver, parse_infra


@pytest.fixture(scope="session")
def parsed() -> dict[str, Any]:
    return parse_infra()


@pytest.fixture(scope="session")
def templates(parsed: dict[str, Any]) -> dict[str, Any]:
    files: dict[str, Any] = parsed["files"]
    return files


@pytest.fixture(scope="session")
def main(templates: dict[str, Any]) -> dict[str, Any]:
    main_template: dict[str, Any] = templates["main.bicep"]
    return main_template


@pytest.fixture(scope="session")
def parameters_file() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="session")
def parameter_values(main: dict[str, Any], parameters_file: dict[str, Any]) -> dict[str, Any]:
    """Each main.bicep parameter as a deployment with main.parameters.json would see it."""
    given = {name: entry["value"] for name, entry in parameters_file["parameters"].items()}
    resolver = Resolver({}, FAKE_OUTPUTS)
    values: dict[str, Any] = {}
    for name, parameter in main["parameters"].items():
        if name in given:
            values[name] = given[name]
        elif parameter["default"] is not None:
            values[name] = resolver.resolve(parameter["default"])
    return values


@pytest.fixture(scope="session")
def app_setting_expressions(main: dict[str, Any]) -> dict[str, Any]:
    expressions: dict[str, Any] = main["variables"]["appSettings"]["value"]
    return expressions


@pytest.fixture(scope="session")
def app_settings(app_setting_expressions: dict[str, Any], parameter_values: dict[str, Any]) -> dict[str, str]:
    """main.bicep's app settings as the Function App would see them (module outputs faked)."""
    resolver = Resolver(parameter_values, FAKE_OUTPUTS)
    return {name: str(resolver.resolve(expression)) for name, expression in app_setting_expressions.items()}
