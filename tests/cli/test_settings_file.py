"""`--settings local.settings.json`: its Values complete the given environment; a relative CA bundle from the file
is resolved against the file's folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli.settings_file import load_environment


def settings_file(folder: Path, **values: str) -> Path:
    path = folder / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    return path


def test_a_relative_ca_bundle_from_the_file_is_resolved_against_the_file_folder(tmp_path: Path, monkeypatch):
    # The caller's environment is explicit and empty: the process environment must not decide anything.
    monkeypatch.setenv("LOCAL_CLOUD_CA_BUNDLE", "/elsewhere/ca.pem")
    env = load_environment(settings_file(tmp_path, LOCAL_CLOUD_CA_BUNDLE="certs/ca.pem"), {})
    assert env == {"LOCAL_CLOUD_CA_BUNDLE": str(tmp_path / "certs" / "ca.pem")}


def test_a_ca_bundle_from_the_environment_wins_and_is_kept_as_given(tmp_path: Path):
    env = load_environment(
        settings_file(tmp_path, LOCAL_CLOUD_CA_BUNDLE="certs/ca.pem"), {"LOCAL_CLOUD_CA_BUNDLE": "mine.pem"}
    )
    assert env == {"LOCAL_CLOUD_CA_BUNDLE": "mine.pem"}


@pytest.mark.parametrize("content", ["{not json", "[]", '{"Values": 3}'])
def test_an_unusable_settings_file_names_the_option(tmp_path: Path, content: str):
    path = tmp_path / "local.settings.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="app setting --settings"):
        load_environment(path, {})
