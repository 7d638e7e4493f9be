"""Fixed identities of the demo local cloud, so settings files, docs and tests can name them.

The story: an ISV runs dataverse-sync in its own (home) tenant. Its Function App has a user-assigned managed
identity that may read the Key Vault holding the certificate of one multi-tenant app registration. Two customer
tenants (Contoso, Fabrikam) have consented to that app, and each has a Dataverse environment where the app's
service principal is an application user with a custom security role.
None of these values is a secret: they are identifiers of emulated objects.
"""

from __future__ import annotations

HOME_TENANT_ID = "0c0ffee0-0000-4000-8000-00000000a001"
CONTOSO_TENANT_ID = "c0471050-0000-4000-8000-00000000c001"
FABRIKAM_TENANT_ID = "fab71ca0-0000-4000-8000-00000000f001"
NO_CONSENT_TENANT_ID = "0dd0dd00-0000-4000-8000-00000000d001"  # exists, never consented to the app

DATAVERSE_APP_CLIENT_ID = "da7a5e75-0000-4000-8000-0000000a9901"  # the multi-tenant app registration
# The app's service principal has a different object id in every tenant where it is consented.
DATAVERSE_APP_OBJECT_IDS = {
    HOME_TENANT_ID: "5e7a1ce0-0000-4000-8000-0000000a0001",
    CONTOSO_TENANT_ID: "5e7a1ce0-0000-4000-8000-0000000c0001",
    FABRIKAM_TENANT_ID: "5e7a1ce0-0000-4000-8000-0000000f0001",
}

MANAGED_IDENTITY_CLIENT_ID = "3a11a9ed-0000-4000-8000-0000000b0001"  # user-assigned identity of the Function App
MANAGED_IDENTITY_OBJECT_ID = "3a11a9ed-0000-4000-8000-0000000b0002"
OTHER_IDENTITY_CLIENT_ID = "07e4e4ed-0000-4000-8000-0000000b0003"  # an identity with no Key Vault access
OTHER_IDENTITY_OBJECT_ID = "07e4e4ed-0000-4000-8000-0000000b0004"

CERTIFICATE_NAME = "dataverse-sync-cert"  # Key Vault certificate (and secret) name

# Dataverse environments: name -> tenant. Each org gets its own https://127.0.0.1:<port> URL.
ORGS = {"contoso": CONTOSO_TENANT_ID, "fabrikam": FABRIKAM_TENANT_ID}
# A person in Contoso the app may impersonate (CallerObjectId), and the systemuserid Dataverse gives them.
CONTOSO_USER_OBJECT_ID = "0b1ec7ed-0000-4000-8000-0000000c0101"
CONTOSO_USER_SYSTEMUSER_ID = "5959e0e0-0000-4000-8000-0000000c0101"
