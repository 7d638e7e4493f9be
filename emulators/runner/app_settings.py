"""App settings as Core Tools provides them to the host and the Python worker, and the host's name resolution.

- `local.settings.json` `Values` (falling back to the project's `local.settings.sample.json`) become environment
  variables before the app is imported. As with `func start`, a variable already set in the environment wins and
  the file's value is skipped (Core Tools logs "Skipping '<name>' from local settings as it's already defined in
  current environment variables"). The caller's overrides (the local cloud's dynamic endpoints) always win.
  https://learn.microsoft.com/azure/azure-functions/functions-develop-local#local-settings-file
- `%NAME%` in binding properties is replaced by the app setting NAME; an unknown name is an indexing error
  ("'%NAME%' does not resolve to a value"), https://learn.microsoft.com/azure/azure-functions/functions-bindings-expressions-patterns#binding-expressions---app-settings
- A binding's `connection` names a setting holding a connection string, looked up as `AzureWebJobs<name>` then
  `<name>`; empty means `AzureWebJobsStorage`. `<name>__queueServiceUri` (identity-based connection) cannot work
  against Azurite, so it is refused with a message naming the setting.
  https://learn.microsoft.com/azure/azure-functions/functions-reference#connections
Setting values are never logged or put in exception messages; only names are.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emulators.runner.errors import RunnerConfigError

log = logging.getLogger("emulators.runner")

LOCAL_SETTINGS = "local.settings.json"
SAMPLE_SETTINGS = "local.settings.sample.json"
_EXPRESSION = re.compile(r"%([^%]+)%")
_IDENTITY_SUFFIXES = ("queueServiceUri", "serviceUri", "accountName", "credential", "clientId")


def find_settings_file(root: Path) -> Path | None:
    for name in (LOCAL_SETTINGS, SAMPLE_SETTINGS):
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class LocalSettings:
    values: dict[str, str]
    connection_strings: dict[str, str] = field(default_factory=dict)
    source: Path | None = None

    @classmethod
    def load(cls, path: Path | None) -> LocalSettings:
        if path is None:
            return cls(values={})
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunnerConfigError(f"settings file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise RunnerConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise RunnerConfigError(f"{path}: must be a JSON object with a 'Values' object")
        if data.get("IsEncrypted") is True:
            raise RunnerConfigError(f"{path}: IsEncrypted is true; decrypt it with `func settings decrypt`")
        return cls(
            values=_string_map(data.get("Values", {}), path, "Values"),
            connection_strings=_string_map(data.get("ConnectionStrings", {}), path, "ConnectionStrings"),
            source=path,
        )


def _string_map(raw: object, path: Path, section: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise RunnerConfigError(f"{path}: {section} must be an object of strings")
    result: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            # Core Tools requires strings too: every app setting is an environment variable.
            raise RunnerConfigError(f"{path}: {section}.{key} must be a string (all app settings are strings)")
        result[key] = value
    return result


class AppliedEnvironment:
    """Sets app settings in os.environ and restores the previous values on `restore()`."""

    def __init__(self) -> None:
        self._previous: dict[str, str | None] = {}

    def apply(self, local: LocalSettings, overrides: Mapping[str, str]) -> None:
        for name, value in local.values.items():
            if name in overrides:
                continue
            if os.environ.get(name):
                log.info("Skipping '%s' from local settings as it's already defined in the environment", name)
                continue
            self._set(name, value)
        for name, value in overrides.items():
            self._set(name, str(value))

    def set_default(self, name: str, value: str) -> None:
        if name not in os.environ:
            self._set(name, value)

    def _set(self, name: str, value: str) -> None:
        if name not in self._previous:
            self._previous[name] = os.environ.get(name)
        os.environ[name] = value

    def restore(self) -> None:
        for name, value in self._previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._previous.clear()


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """App settings given on a command line as `NAME=VALUE` (`--setting`); an error names the pair, not its value."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise RunnerConfigError(f"--setting expects NAME=VALUE, got {pair.split('=')[0]!r}...")
        overrides[name] = value
    return overrides


def setting(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """An app setting by name; like .NET configuration, an exact match first, then case-insensitively."""
    env = os.environ if env is None else env
    if name in env:
        return env[name]
    lowered = name.lower()
    return next((value for key, value in env.items() if key.lower() == lowered), None)


def resolve_expressions(value: str, *, where: str, env: Mapping[str, str] | None = None) -> str:
    """Replace every `%NAME%` in a binding property with the app setting NAME."""

    def substitute(match: re.Match[str]) -> str:
        resolved = setting(match[1], env)
        if resolved is None:
            raise RunnerConfigError(f"{where}: '%{match[1]}%' does not resolve to a value (no app setting {match[1]})")
        return resolved

    return _EXPRESSION.sub(substitute, value)


def connection_string(connection: str | None, *, where: str, local: LocalSettings | None = None) -> str:
    """The storage connection string a binding's `connection` names (never logged)."""
    name = (connection or "").strip() or "Storage"
    candidates = [f"AzureWebJobs{name}", name]
    for candidate in candidates:
        value = setting(candidate)
        if value and value.strip():
            return value.strip()
    if local is not None and local.connection_strings.get(name):
        return local.connection_strings[name]
    identity = [f"{name}__{suffix}" for suffix in _IDENTITY_SUFFIXES if setting(f"{name}__{suffix}")]
    if identity:
        raise RunnerConfigError(
            f"{where}: connection '{name}' is identity-based ({', '.join(identity)}); the local runner talks to "
            f"Azurite over http, which has no Entra ID auth. Set app setting {name} to a connection string "
            "locally (UseDevelopmentStorage=true or the Azurite connection string)."
        )
    raise RunnerConfigError(
        f"{where}: storage connection '{name}' is not defined: set app setting {' or '.join(candidates)} "
        "to a connection string"
    )
