"""Read the Bicep templates the way tests need them: parsed by pycep-parser 0.7.1 (in .venv-pycep, through
infra/tools/parse_bicep.py), with small helpers over pycep's JSON and a resolver for the expressions the app settings
use (parameters, string(), '${...}' interpolation, module outputs)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PYCEP_PYTHON = ROOT / ".venv-pycep" / "bin" / "python"
PARSE_SCRIPT = INFRA / "tools" / "parse_bicep.py"

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
INTERPOLATION = re.compile(r"\$\{([^}]*)\}")

FAKE_IDENTITY_CLIENT_ID = "3a11a9ed-0000-4000-8000-0000000b0001"

# Stand-ins for what the modules output at deployment time, in the formats Azure returns them.
FAKE_OUTPUTS: dict[tuple[str, ...], str] = {
    ("storage", "blobEndpoint"): "https://stdvsynctoken.blob.core.windows.net/",
    ("storage", "queueEndpoint"): "https://stdvsynctoken.queue.core.windows.net/",
    ("identity", "clientId"): FAKE_IDENTITY_CLIENT_ID,
    ("monitoring", "connectionString"): "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
    "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
    ("keyVault", "uri"): "https://kv-dvsync-token.vault.azure.net/",
    ("environment()", "authentication", "loginEndpoint"): "https://login.microsoftonline.com/",
    ("resource_group()", "location"): "westeurope",
}


def parse_infra() -> dict[str, Any]:
    """{"files": {relative path: pycep JSON}, "errors": {relative path: message}} for every .bicep under infra/."""
    if not PYCEP_PYTHON.exists():
        raise FileNotFoundError(f"{PYCEP_PYTHON} is missing: run `make infra-tools` (make test does it)")
    completed = subprocess.run(
        [str(PYCEP_PYTHON), str(PARSE_SCRIPT), str(INFRA)], capture_output=True, text=True, check=True, timeout=120
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@dataclass(frozen=True)
class Resource:
    file: str
    symbol: str
    type: str
    api_version: str
    existing: bool
    body: dict[str, Any]  # the resource's own properties (name, properties, scope, ...)
    condition: Any  # `if (...)` expression, or None
    loop: Any  # `for` loop description, or None


def resources(files: Mapping[str, Any], type_: str | None = None) -> list[Resource]:
    found = []
    for file, parsed in sorted(files.items()):
        for symbol, resource in parsed.get("resources", {}).items():
            if type_ is not None and resource["type"].lower() != type_.lower():
                continue
            config = resource["config"]
            condition = loop = None
            if "loop_type" in config or "condition" in config:
                condition, loop, config = config.get("condition"), config.get("loop_type"), config["config"]
            found.append(
                Resource(
                    file,
                    symbol,
                    resource["type"],
                    resource["api_version"],
                    resource["existing"],
                    config,
                    condition,
                    loop,
                )
            )
    return found


def one(files: Mapping[str, Any], type_: str) -> Resource:
    matches = [r for r in resources(files, type_) if not r.existing]
    assert len(matches) == 1, f"expected one {type_}, found {[r.symbol for r in matches]}"
    return matches[0]


def access_path(expression: Any) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"] (a function call as "name()"), or None when it is not a property access."""
    if not (isinstance(expression, dict) and expression.get("operator", {}).get("type") == "property_accessor"):
        return None
    operands = expression["operator"]["operands"]
    parts: list[str] = []
    for operand in (operands["operand_1"], operands["operand_2"]):
        if isinstance(operand, str):
            parts.append(operand)
        elif isinstance(operand, dict) and "function" in operand:
            parts.append(f"{operand['function']['type']}()")
        else:
            inner = access_path(operand)
            if inner is None:
                raise ValueError(f"unsupported accessor operand {operand!r}")
            parts.extend(inner)
    return parts


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def bicep_string(value: Any) -> str:
    """What Bicep's string() gives: booleans lower-case, objects and arrays as compact JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Resolver:
    """Evaluates the subset of Bicep expressions main.bicep's app settings use, with fake module outputs."""

    def __init__(self, parameters: Mapping[str, Any], outputs: Mapping[tuple[str, ...], str]) -> None:
        self.parameters = parameters
        self.outputs = outputs

    def resolve(self, expression: Any) -> Any:
        if isinstance(expression, str):
            if expression in self.parameters:
                return self.parameters[expression]
            return INTERPOLATION.sub(lambda m: bicep_string(self._path(m.group(1).split("."))), expression)
        if expression is None or isinstance(expression, bool | int | float | list):
            return expression
        if not ({"function", "operator"} & set(expression)):
            return expression  # an object literal
        if "function" in expression and expression["function"]["type"] == "string":
            return bicep_string(self.resolve(expression["function"]["parameters"]["value_to_convert"]))
        path = access_path(expression)
        if path is None:
            raise ValueError(f"unsupported expression {expression!r}")
        return self._path(path)

    def _path(self, path: list[str]) -> str:
        key = tuple(part for part in path if part != "outputs")
        if key not in self.outputs:
            raise KeyError(f"no fake value for {'.'.join(path)}")
        return self.outputs[key]
