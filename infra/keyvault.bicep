// Key Vault holding the Dataverse app registration's certificate. The operator imports it (az keyvault certificate
// import, see infra/README.md); the app only reads the certificate's secret (PFX/PEM) with its managed identity.

@description('Key Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object

@description('Days a deleted vault or certificate stays recoverable (7-90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int

// Property names: https://learn.microsoft.com/azure/templates/microsoft.keyvault/2023-07-01/vaults
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:The Flex Consumption app has no VNet integration in this template, so it reaches the vault over the public endpoint; every request still needs an Entra ID token and an RBAC role (Azure RBAC authorization, read-only for the app). See infra/README.md, 'Network isolation'. A deny-by-default firewall would block it.
  // checkov:skip=CKV_AZURE_189:The Flex Consumption app has no VNet integration in this template, so it reaches the vault over the public endpoint; every request still needs an Entra ID token and an RBAC role (Azure RBAC authorization, read-only for the app). See infra/README.md, 'Network isolation'. Public network access is therefore required.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC instead of access policies: grants live in roles.bicep and are auditable like every other role.
    // https://learn.microsoft.com/azure/key-vault/general/rbac-guide
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Irreversible once on: a deleted certificate cannot be purged before its retention ends, so an attacker (or a
    // mistake) cannot destroy the credential for good. https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
