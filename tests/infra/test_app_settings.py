"""The template sets every app setting the code reads, with values the app accepts, and lists the same names as
local.settings.sample.json except where local and Azure differ on purpose (each exception says why)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.config.settings import CONNECTION, SCHEDULE_SETTINGS, SETTING_NAMES, ConfigError, Settings
from tests.infra.bicep import FAKE_IDENTITY_CLIENT_ID, FAKE_OUTPUTS, ROOT

LOCAL_ONLY = {
    "LOCAL_CLOUD_CA_BUNDLE": "trusts the local cloud's CA; in Azure the public CAs are trusted already",
    "KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false only for the Key Vault emulator; the app defaults to true",
    "IDENTITY_ENDPOINT": "set by the platform in Azure (managed identity endpoint); locally it points at the emulator",
    "IDENTITY_HEADER": "set by the platform in Azure, like IDENTITY_ENDPOINT",
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption sets the runtime in functionAppConfig.runtime, not as a setting",
}

# A connection string locally (Azurite); identity-based settings with the same prefix in Azure.
# https://learn.microsoft.com/azure/azure-functions/functions-reference#common-properties-for-identity-based-connections
IDENTITY_CONNECTIONS = {
    "AzureWebJobsStorage": {"__blobServiceUri", "__queueServiceUri", "__credential", "__clientId"},
    CONNECTION: {"__queueServiceUri", "__credential", "__clientId"},
}

AZURE_ONLY = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "Application Insights exists only in Azure",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra ID auth for telemetry, only with Application Insights",
}


def local_sample() -> dict[str, str]:
    values: dict[str, str] = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    return values


def test_template_and_local_sample_list_the_same_settings(app_settings: dict[str, str]) -> None:
    local = set(local_sample())
    assert set(LOCAL_ONLY) <= local
    expected = (local - set(LOCAL_ONLY) - set(IDENTITY_CONNECTIONS)) | set(AZURE_ONLY)
    expected |= {prefix + suffix for prefix, suffixes in IDENTITY_CONNECTIONS.items() for suffix in suffixes}
    assert set(app_settings) == expected


def test_every_setting_the_code_reads_is_set(app_settings: dict[str, str]) -> None:
    for name in (*SETTING_NAMES, *SCHEDULE_SETTINGS):
        if name in LOCAL_ONLY:
            continue
        if name in IDENTITY_CONNECTIONS:
            assert {name + suffix for suffix in IDENTITY_CONNECTIONS[name]} <= set(app_settings), name
        else:
            assert name in app_settings, f"{name} is read by shared/config/settings.py but not set by infra/"


def test_identity_based_connections_use_the_user_assigned_identity(app_settings: dict[str, str]) -> None:
    for prefix in IDENTITY_CONNECTIONS:
        assert app_settings[f"{prefix}__credential"] == "managedidentity"
        assert app_settings[f"{prefix}__clientId"] == FAKE_IDENTITY_CLIENT_ID
    queue_endpoint = FAKE_OUTPUTS[("storage", "queueEndpoint")]
    assert app_settings[f"{CONNECTION}__queueServiceUri"] == queue_endpoint
    assert app_settings["AzureWebJobsStorage__queueServiceUri"] == queue_endpoint
    assert app_settings["AzureWebJobsStorage__blobServiceUri"] == FAKE_OUTPUTS[("storage", "blobEndpoint")]
    assert app_settings["AZURE_CLIENT_ID"] == FAKE_IDENTITY_CLIENT_ID


def test_the_app_accepts_what_the_template_sets(app_settings: dict[str, str], parameters_file: dict[str, Any]) -> None:
    settings = Settings.from_environ(app_settings)
    assert settings.queue_connection.connection_string is None
    assert settings.queue_connection.queue_service_uri == FAKE_OUTPUTS[("storage", "queueEndpoint")]
    assert settings.queue_connection.client_id == FAKE_IDENTITY_CLIENT_ID
    assert settings.managed_identity_client_id == FAKE_IDENTITY_CLIENT_ID
    assert settings.keyvault_url == FAKE_OUTPUTS[("keyVault", "uri")].rstrip("/")
    assert settings.keyvault_verify_challenge_resource is True
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert settings.ca_bundle is None
    environments = parameters_file["parameters"]["dataverseEnvironments"]["value"]
    assert set(settings.environments) == set(environments)


def test_template_defaults_are_the_apps_defaults(app_settings: dict[str, str]) -> None:
    tuning = {name for name in SETTING_NAMES if name not in LOCAL_ONLY} - {
        CONNECTION,
        "AZURE_CLIENT_ID",
        "KEYVAULT_URL",
        "DATAVERSE_CLIENT_ID",
        "DATAVERSE_CERT_NAME",
        "DATAVERSE_ENVIRONMENTS",
    }
    without_tuning = {name: value for name, value in app_settings.items() if name not in tuning}
    assert Settings.from_environ(app_settings) == Settings.from_environ(without_tuning)
    sample = local_sample()
    for schedule in SCHEDULE_SETTINGS:
        assert app_settings[schedule] == sample[schedule]
        assert len(app_settings[schedule].split()) == 6, f"{schedule}: NCRONTAB has six fields (seconds first)"


def bounded_int_settings(main: dict[str, Any], expressions: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    """(setting, parameter, min, max) for every setting written as string(<int parameter with bounds>)."""
    found = []
    for setting, expression in expressions.items():
        if not (isinstance(expression, dict) and expression.get("function", {}).get("type") == "string"):
            continue
        parameter_name = expression["function"]["parameters"]["value_to_convert"]
        parameter = main["parameters"].get(parameter_name)
        if parameter is None or parameter["type"] != "int":
            continue
        bounds = {d["type"]: d["argument"] for d in parameter["decorators"]}
        found.append((setting, parameter_name, bounds["min_value"], bounds["max_value"]))
    return found


def test_every_numeric_setting_is_bounded_in_the_template(
    main: dict[str, Any], app_setting_expressions: dict[str, Any]
) -> None:
    bounded = {setting for setting, *_ in bounded_int_settings(main, app_setting_expressions)}
    assert len(bounded) == 11
    assert all(app_setting_expressions[s]["function"]["type"] == "string" for s in bounded)


@pytest.mark.parametrize("edge", ["min", "max"])
def test_the_app_accepts_every_value_the_template_allows(
    main: dict[str, Any], app_setting_expressions: dict[str, Any], app_settings: dict[str, str], edge: str
) -> None:
    # A deployment that passes the template's own validation must not stop the app at start-up.
    for setting, parameter, low, high in bounded_int_settings(main, app_setting_expressions):
        env = dict(app_settings, **{setting: str(low if edge == "min" else high)})
        # The one cross-setting rule: a request may not outlast the invocation's time budget.
        if setting == "DATAVERSE_REQUEST_TIMEOUT_SECONDS":
            env["SYNC_TIME_BUDGET_SECONDS"] = "3600"
        if setting == "SYNC_TIME_BUDGET_SECONDS":
            env["DATAVERSE_REQUEST_TIMEOUT_SECONDS"] = "5"
        try:
            Settings.from_environ(env)
        except ConfigError as exc:
            pytest.fail(f"parameter {parameter} allows {env[setting]}, but the app refuses it: {exc}")
