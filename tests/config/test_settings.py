"""Settings are read in one place, validated, and every error names the setting at fault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.config.settings import SETTING_NAMES, ConfigError, Settings

CONTOSO = {
    "url": "https://contoso.crm.dynamics.com/",
    "tenant_id": "C0471050-0000-4000-8000-00000000C001",
    "tables": {"account": {"alternate_keys": [["accountnumber"]]}, "contact": {}},
}


def minimal_env(**overrides: Any) -> dict[str, str]:
    env = {
        "SYNC_STORAGE": "UseDevelopmentStorage=true",
        "KEYVAULT_URL": "https://vault-x.vault.azure.net/",
        "DATAVERSE_CLIENT_ID": "da7a5e75-0000-4000-8000-0000000a9901",
        "DATAVERSE_CERT_NAME": "dataverse-sync-cert",
        "DATAVERSE_ENVIRONMENTS": json.dumps({"contoso": CONTOSO}),
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        env.pop(key, None)
    return env


def error_for(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Settings.from_environ(env)
    return info.value


def test_minimal_settings_get_documented_defaults() -> None:
    s = Settings.from_environ(minimal_env())
    assert s.keyvault_url == "https://vault-x.vault.azure.net"
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.keyvault_verify_challenge_resource is True
    assert s.bulk_chunk_size == 1000
    assert s.ca_bundle is None
    env = s.environments["contoso"]
    assert env.url == "https://contoso.crm.dynamics.com"
    assert env.tenant_id == "c0471050-0000-4000-8000-00000000c001"
    assert env.tables["account"].alternate_keys == [["accountnumber"]]


@pytest.mark.parametrize(
    "missing", ["KEYVAULT_URL", "DATAVERSE_CLIENT_ID", "DATAVERSE_CERT_NAME", "DATAVERSE_ENVIRONMENTS"]
)
def test_missing_required_setting_is_named(missing: str) -> None:
    err = error_for(minimal_env(**{missing: None}))
    assert err.setting == missing
    assert missing in str(err)


@pytest.mark.parametrize(
    ("setting", "value", "fragment"),
    [
        ("KEYVAULT_URL", "http://vault", "https"),
        ("DATAVERSE_CLIENT_ID", "not-a-guid", "GUID"),
        ("DATAVERSE_BULK_CHUNK_SIZE", "1001", "between 1 and 1000"),
        ("DATAVERSE_BULK_CHUNK_SIZE", "ten", "whole number"),
        ("DATAVERSE_SEND_CERT_CHAIN", "maybe", "true or false"),
        ("LOCAL_CLOUD_CA_BUNDLE", "/nonexistent/ca.pem", "file not found"),
        ("SYNC_STORAGE", "garbage", "connection string"),
    ],
)
def test_invalid_values_name_the_setting(setting: str, value: str, fragment: str) -> None:
    err = error_for(minimal_env(**{setting: value}))
    assert err.setting == setting
    assert fragment in err.problem


@pytest.mark.parametrize(
    ("environments", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (json.dumps({"contoso": {**CONTOSO, "url": "http://x"}}), "contoso.url"),
        (json.dumps({"contoso": {**CONTOSO, "url": "https://x/api/data"}}), "contoso.url"),
        (json.dumps({"contoso": {**CONTOSO, "tenant_id": "contoso.onmicrosoft.com"}}), "contoso.tenant_id"),
        (json.dumps({"contoso": {**CONTOSO, "tables": {}}}), "contoso.tables"),
        (json.dumps({"contoso": {**CONTOSO, "tables": {"Account": {}}}}), "logical name"),
        (
            json.dumps({"contoso": {**CONTOSO, "tables": {"account": {"alternate_keys": [["Account Number"]]}}}}),
            "column logical name",
        ),
        (json.dumps({"contoso": {**CONTOSO, "colour": "blue"}}), "contoso.colour"),
        (json.dumps({"bad name!": CONTOSO}), "environment name"),
    ],
)
def test_environment_errors_are_path_addressed(environments: str, fragment: str) -> None:
    err = error_for(minimal_env(DATAVERSE_ENVIRONMENTS=environments))
    assert err.setting == "DATAVERSE_ENVIRONMENTS"
    assert fragment in err.problem


def test_identity_based_queue_connection() -> None:
    s = Settings.from_environ(
        minimal_env(
            SYNC_STORAGE=None,
            SYNC_STORAGE__queueServiceUri="https://st.queue.core.windows.net",
            SYNC_STORAGE__credential="managedidentity",
            SYNC_STORAGE__clientId="3a11a9ed-0000-4000-8000-0000000b0001",
        )
    )
    assert s.queue_connection.connection_string is None
    assert s.queue_connection.queue_service_uri == "https://st.queue.core.windows.net"
    assert s.queue_connection.client_id == "3a11a9ed-0000-4000-8000-0000000b0001"


def test_queue_connection_missing_names_both_forms() -> None:
    err = error_for(minimal_env(SYNC_STORAGE=None))
    assert err.setting == "SYNC_STORAGE"
    assert "__queueServiceUri" in err.problem


def test_connection_string_is_not_in_repr() -> None:
    s = Settings.from_environ(minimal_env(SYNC_STORAGE="AccountName=a;AccountKey=SECRETKEY=="))
    assert "SECRETKEY" not in repr(s)


def test_sample_settings_are_the_settings_the_code_reads() -> None:
    sample = json.loads((Path(__file__).parents[2] / "local.settings.sample.json").read_text())["Values"]
    assert set(SETTING_NAMES) <= set(sample), set(SETTING_NAMES) - set(sample)
