"""Security properties a review expects, asserted on the parsed templates (checkov has no check for several of them,
e.g. allowSharedKeyAccess)."""

from __future__ import annotations

from typing import Any

from tests.infra.bicep import one, resources

FORBIDDEN_ON_FLEX = {
    # Flex Consumption sets the runtime in functionAppConfig and manages the package itself:
    # https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    # Flex cannot load certificates into the host; the app reads it from Key Vault with the SDK.
    "WEBSITE_LOAD_CERTIFICATES",
}


def test_storage_allows_only_entra_id_over_tls12(templates: dict[str, Any]) -> None:
    storage = one(templates, "Microsoft.Storage/storageAccounts").body["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["defaultToOAuthAuthentication"] is True
    assert storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    assert storage["supportsHttpsTrafficOnly"] is True
    assert storage["allowCrossTenantReplication"] is False


def test_deployment_container_is_private(templates: dict[str, Any]) -> None:
    container = one(templates, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container.body["properties"]["publicAccess"] == "None"


def test_key_vault_uses_rbac_soft_delete_and_purge_protection(templates: dict[str, Any]) -> None:
    vault = one(templates, "Microsoft.KeyVault/vaults").body["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert "accessPolicies" not in vault
    assert vault["enabledForTemplateDeployment"] is False


def test_key_vault_retention_parameter_is_bounded_as_the_service_allows(templates: dict[str, Any]) -> None:
    parameter = templates["keyvault.bicep"]["parameters"]["softDeleteRetentionInDays"]
    bounds = {d["type"]: d["argument"] for d in parameter["decorators"] if d["type"] in ("min_value", "max_value")}
    assert bounds == {"min_value": 7, "max_value": 90}


def test_function_app_is_https_only_tls12_without_ftp_or_basic_auth(templates: dict[str, Any]) -> None:
    app = one(templates, "Microsoft.Web/sites").body
    site = app["properties"]
    assert site["httpsOnly"] is True
    assert site["siteConfig"]["minTlsVersion"] in ("1.2", "1.3")
    assert site["siteConfig"]["scmMinTlsVersion"] in ("1.2", "1.3")
    assert site["siteConfig"]["ftpsState"] == "Disabled"
    policies = {r.body["name"]: r.body["properties"]["allow"] for r in resources(templates, _POLICY)}
    assert policies == {"ftp": False, "scm": False}


def test_function_app_refuses_inbound_http_by_default(templates: dict[str, Any], main: dict[str, Any]) -> None:
    site_config = one(templates, "Microsoft.Web/sites").body["properties"]["siteConfig"]
    action = site_config["ipSecurityRestrictionsDefaultAction"]["operator"]["operands"]
    assert action == {"condition": "denyInboundHttp", "true_value": "Deny", "false_value": "Allow"}
    assert main["parameters"]["denyInboundHttp"]["default"] is True
    # Deployments go through the scm site, which keeps its own (allow) rule and needs Entra ID.
    assert site_config["scmIpSecurityRestrictionsUseMain"] is False


def test_function_app_uses_only_its_user_assigned_identity(templates: dict[str, Any]) -> None:
    site = one(templates, "Microsoft.Web/sites").body
    assert site["identity"]["type"] == "UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"


def test_no_setting_that_breaks_or_is_ignored_on_flex(app_settings: dict[str, str]) -> None:
    assert not FORBIDDEN_ON_FLEX & set(app_settings)
    assert not any(name.startswith("WEBSITE_CONTENT") for name in app_settings)


def test_no_connection_string_with_a_key_anywhere(app_settings: dict[str, str]) -> None:
    assert "AzureWebJobsStorage" not in app_settings  # the identity-based AzureWebJobsStorage__* form only
    assert "SYNC_STORAGE" not in app_settings
    for name, value in app_settings.items():
        assert "AccountKey=" not in value, name
        assert "SharedAccessSignature=" not in value, name


def test_telemetry_needs_entra_id(templates: dict[str, Any], app_settings: dict[str, str]) -> None:
    component = one(templates, "Microsoft.Insights/components").body["properties"]
    assert component["DisableLocalAuth"] is True
    assert component["WorkspaceResourceId"]
    workspace = one(templates, "Microsoft.OperationalInsights/workspaces").body["properties"]
    assert workspace["features"]["disableLocalAuth"] is True
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        f"ClientId={app_settings['AZURE_CLIENT_ID']};Authorization=AAD"
    )


def test_nothing_secret_passes_through_a_deployment(templates: dict[str, Any]) -> None:
    # The certificate is imported into Key Vault by the operator (infra/README.md); the template takes no secure
    # parameter and outputs no key or connection string, so deployment history holds no secret.
    for file, template in templates.items():
        for name, parameter in template["parameters"].items():
            assert not any(d["type"] == "secure" for d in parameter["decorators"]), f"{file}: @secure() {name}"
    for name in templates["main.bicep"]["outputs"]:
        assert not any(
            word in name.lower()
            for word in ("connectionstring", "accountkey", "instrumentationkey", "secret", "password")
        ), name


_POLICY = "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
