"""Least privilege: every role assignment is on the allow-list below, scoped to one resource, and explained."""

from __future__ import annotations

from typing import Any

from tests.infra.bicep import GUID, INFRA, access_path, resources

# Built-in role ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_CERTIFICATES_OFFICER = "a4417e6f-fecd-4de8-b567-7b0420556985"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

STORAGE = "Microsoft.Storage/storageAccounts"
VAULT = "Microsoft.KeyVault/vaults"
APP_INSIGHTS = "Microsoft.Insights/components"

# (principal parameter, role id, type of the one resource it is scoped to)
ALLOWED = {
    ("appPrincipalId", BLOB_DATA_OWNER, STORAGE),  # Functions host storage + deployment package
    ("appPrincipalId", QUEUE_DATA_CONTRIBUTOR, STORAGE),  # trigger, poison queue, dead-letter sends
    ("appPrincipalId", KEY_VAULT_SECRETS_USER, VAULT),  # read the certificate's secret
    ("appPrincipalId", MONITORING_METRICS_PUBLISHER, APP_INSIGHTS),  # telemetry with local auth disabled
    ("operatorPrincipalId", KEY_VAULT_CERTIFICATES_OFFICER, VAULT),  # import/rotate the certificate
    ("operatorPrincipalId", QUEUE_DATA_CONTRIBUTOR, STORAGE),  # operator CLI (shared keys are off)
}

BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
}

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"


def _assignments(templates: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(principal, role id, scope resource type, the resource) for every role assignment in the templates."""
    found = []
    for assignment in resources(templates, ROLE_ASSIGNMENT):
        file = templates[assignment.file]
        properties = assignment.body["properties"]
        role_function = properties["roleDefinitionId"]["function"]
        assert role_function["type"] == "subscription_resource_id", assignment.symbol
        assert role_function["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        role = role_function["parameters"]["resource_name_1"]
        scope_symbol = assignment.body.get("scope")
        assert isinstance(scope_symbol, str), f"{assignment.symbol} has no resource scope (resource group wide)"
        scope_type = file["resources"][scope_symbol]["type"]
        found.append((properties["principalId"], role, scope_type, assignment))
    return found


def test_every_role_assignment_is_on_the_allow_list(templates: dict[str, Any]) -> None:
    granted = {(principal, role, scope) for principal, role, scope, _ in _assignments(templates)}
    assert granted == ALLOWED
    assert not set(BROAD_ROLES) & {role for _, role, _ in ALLOWED}


def test_assignments_are_idempotent_and_typed(templates: dict[str, Any]) -> None:
    for principal, role, _, assignment in _assignments(templates):
        name = assignment.body["name"]["function"]
        # guid(scope.id, principal, role): one stable name per grant, so redeployments update instead of failing.
        assert name["type"] == "guid"
        assert access_path(name["parameters"]["base_string"]) == [assignment.body["scope"], "id"]
        assert name["parameters"]["extra_string_1"] == principal
        assert name["parameters"]["extra_string_2"] == role
        properties = assignment.body["properties"]
        expected_type = "ServicePrincipal" if principal == "appPrincipalId" else "operatorPrincipalType"
        assert properties["principalType"] == expected_type
        assert properties["description"].startswith("dataverse-sync")


def test_operator_roles_exist_only_when_an_operator_is_given(templates: dict[str, Any]) -> None:
    for principal, _, _, assignment in _assignments(templates):
        if principal == "operatorPrincipalId":
            condition = assignment.condition["operator"]
            assert condition["type"] == "not"
            assert condition["operands"]["bool_value"]["function"]["parameters"]["item_to_test"] == principal
        else:
            assert assignment.condition is None


def test_every_assignment_says_why_in_a_comment() -> None:
    text = (INFRA / "roles.bicep").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(text):
        if line.startswith("resource ") and ROLE_ASSIGNMENT in line:
            comment = []
            for previous in reversed(text[:number]):
                if not previous.startswith("//"):
                    break
                comment.append(previous)
            assert len(" ".join(comment)) > 80, f"roles.bicep line {number + 1}: explain why this role is needed"


def test_no_other_role_id_hides_anywhere_in_the_templates() -> None:
    allowed_ids = {role for _, role, _ in ALLOWED}
    for path in INFRA.rglob("*.bicep"):
        ids = {match.lower() for match in GUID.findall(path.read_text(encoding="utf-8"))}
        assert ids <= allowed_ids, f"{path.name} mentions {ids - allowed_ids}"


def test_main_grants_the_roles_to_the_apps_own_identity(main: dict[str, Any]) -> None:
    params = main["modules"]["roles"]["config"]["params"]
    assert access_path(params["appPrincipalId"]) == ["identity", "outputs", "principalId"]
    # The app starts only after its roles exist, so its first minutes are not access errors.
    assert main["modules"]["functionApp"]["config"]["dependsOn"] == ["roles"]
