"""App settings for the CLI: the process environment, optionally completed by a local.settings.json file.

Like Core Tools, a value already in the environment wins over the file ("Skipping '<name>' from local settings
as it's already defined in current environment variables"), so the same shell that runs the app configures the
CLI. A relative LOCAL_CLOUD_CA_BUNDLE is resolved against the settings file's folder (the app's root).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from shared.config.settings import ConfigError, Settings


def load_environment(settings_file: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    given = os.environ if environ is None else environ
    env = dict(given)
    if settings_file is None:
        return env
    try:
        document = json.loads(settings_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("--settings", f"cannot read {settings_file}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError("--settings", f"{settings_file} is not JSON (line {exc.lineno}: {exc.msg})") from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise ConfigError("--settings", f'{settings_file} has no "Values" object (local.settings.json format)')
    for name, value in values.items():
        if name not in env and isinstance(value, str):
            env[name] = value
    bundle = env.get("LOCAL_CLOUD_CA_BUNDLE", "").strip()
    if bundle and not Path(bundle).is_absolute() and "LOCAL_CLOUD_CA_BUNDLE" not in given:
        env["LOCAL_CLOUD_CA_BUNDLE"] = str((settings_file.parent / bundle).resolve())
    return env


def load_settings(settings_file: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_environ(load_environment(settings_file, environ))
