"""The template creates exactly the queues the code uses, and hosts the app on Flex Consumption as the code expects
(Python 3.11, extension bundle 4.x, package read with the user-assigned identity)."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from shared.queues.names import ALL_QUEUES, RECORDS_POISON_QUEUE, RECORDS_QUEUE
from tests.infra.bicep import ROOT, access_path, one

QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")  # 3-63 chars, no leading/double hyphen


def test_template_creates_exactly_the_queues_the_code_uses(main: dict[str, Any], templates: dict[str, Any]) -> None:
    names = main["variables"]["queueNames"]["value"]
    assert sorted(names) == sorted(ALL_QUEUES)
    assert len(set(names)) == len(names)
    assert f"{RECORDS_QUEUE}-poison" == RECORDS_POISON_QUEUE in names  # the host's poison queue name
    assert all(QUEUE_NAME.match(name) for name in names)
    # ...and they reach the storage module, which creates one queue per name.
    assert main["modules"]["storage"]["config"]["params"]["queueNames"] == "queueNames"
    queues = one(templates, "Microsoft.Storage/storageAccounts/queueServices/queues")
    assert queues.loop["detail"] == {"item_name": "queueName", "array_name": "queueNames"}
    assert queues.body["name"] == "queueName"


def test_queue_urls_are_an_output(main: dict[str, Any], templates: dict[str, Any]) -> None:
    assert access_path(main["outputs"]["queueUrls"]["value"]) == ["storage", "outputs", "queueUrls"]
    assert "queueUrls" in templates["storage.bicep"]["outputs"]


def test_operator_outputs(main: dict[str, Any]) -> None:
    assert {
        "functionAppName",
        "queueUrls",
        "keyVaultUri",
        "keyVaultName",
        "managedIdentityClientId",
        "storageAccountName",
        "applicationInsightsName",
    } <= set(main["outputs"])


def test_flex_consumption_plan_and_python_311(templates: dict[str, Any]) -> None:
    plan = one(templates, "Microsoft.Web/serverfarms").body
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True  # Linux
    site = one(templates, "Microsoft.Web/sites").body
    assert site["kind"] == "functionapp,linux"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    assert "3.11" in requires
    assert "linuxFxVersion" not in site["properties"]["siteConfig"]  # Flex sets the runtime in functionAppConfig


def test_deployment_package_is_read_with_the_user_assigned_identity(
    templates: dict[str, Any], main: dict[str, Any]
) -> None:
    storage = one(templates, "Microsoft.Web/sites").body["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "deploymentContainerUrl"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    params = main["modules"]["functionApp"]["config"]["params"]
    assert access_path(params["deploymentContainerUrl"]) == ["storage", "outputs", "deploymentContainerUrl"]
    assert access_path(params["identityId"]) == ["identity", "outputs", "id"]


def test_scale_settings_are_parameters_within_flex_limits(templates: dict[str, Any], main: dict[str, Any]) -> None:
    scale = one(templates, "Microsoft.Web/sites").body["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert scale == {"maximumInstanceCount": "maximumInstanceCount", "instanceMemoryMB": "instanceMemoryMB"}
    maximum = main["parameters"]["maximumInstanceCount"]
    bounds = {d["type"]: d["argument"] for d in maximum["decorators"]}
    assert bounds["min_value"] >= 1
    assert bounds["max_value"] <= 1000
    assert bounds["min_value"] <= maximum["default"] <= bounds["max_value"]
    memory = main["parameters"]["instanceMemoryMB"]
    allowed = next(d["argument"] for d in memory["decorators"] if d["type"] == "allowed")
    assert set(allowed) <= {512, 2048, 4096}
    assert memory["default"] in allowed


def test_host_uses_extension_bundle_4() -> None:
    # Flex Consumption needs bundle 4.x for non-.NET apps; Storage Queues extension 5.x comes with it.
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
