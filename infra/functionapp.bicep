// The Function App on the Flex Consumption plan (FC1): Python 3.11, deployment package in a blob container read
// with the user-assigned identity, identity-based connections only, no inbound HTTP (the app has queue and timer
// triggers only), HTTPS only, TLS 1.2+, FTP and basic-auth publishing off.
// Samples: Azure-Samples/azure-functions-flex-consumption-samples IaC/bicep/core/host/function.bicep,
// Azure-Samples/functions-quickstart-python-azd-timer infra/main.bicep.
// Schema: https://learn.microsoft.com/azure/templates/microsoft.web/2024-04-01/sites (functionAppConfig).

param planName string
param appName string
param location string
param tags object

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('URL of the deployment package container (https://<account>.blob.core.windows.net/<container>).')
param deploymentContainerUrl string

// Flex Consumption accepts 1-1000: https://learn.microsoft.com/azure/azure-functions/event-driven-scaling#limit-scale-out
@description('Upper bound on instances. Dataverse, not compute, limits throughput (52 concurrent requests per user).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory per instance in MB (Flex Consumption instance sizes).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Zone-redundant plan (needs a region with availability zones and zone-redundant storage).')
param zoneRedundant bool

@description('Deny all inbound HTTP to the app (it has no HTTP triggers); deployment (the scm site) stays reachable.')
param denyInboundHttp bool

@description('App settings, name -> value.')
param appSettings object

// https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy is the zoneRedundant parameter (off by default: not every Flex Consumption region has availability zones); checkov cannot evaluate the parameter.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
    zoneRedundant: zoneRedundant
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:The app has only queue and timer triggers and refuses all inbound HTTP (ipSecurityRestrictionsDefaultAction Deny), so there is no client to present a certificate.
  // checkov:skip=CKV_AZURE_212:numberOfWorkers does not apply to the Flex Consumption plan: instances are added per demand up to maximumInstanceCount and replaced by the platform.
  // checkov:skip=CKV_AZURE_213:App Service health check probes an HTTP path, and this app serves no HTTP; its health is checked by the health-check timer function and the failure alert (alerts.bicep).
  // checkov:skip=CKV_AZURE_222:Public network access stays on for the scm endpoint only: Flex Consumption deployments (func azure functionapp publish, az functionapp deployment source config-zip) go through it, with Entra ID auth (basic auth is off). The app itself denies all inbound HTTP via its access restriction default action.
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    // Key Vault references (@Microsoft.KeyVault(...)) in app settings resolve with the user-assigned identity. The app
    // itself reads the certificate with the SDK (Flex cannot load certificates into the host).
    // https://learn.microsoft.com/azure/app-service/app-service-key-vault-references#access-vaults-with-a-user-assigned-identity
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // No HTTP triggers: refuse every inbound request to the app itself. The scm (deployment) endpoint keeps its own
      // rules so `func azure functionapp publish` and `az functionapp deployment source config-zip` still work; it
      // accepts Entra ID tokens only (basic auth is off below). Flex Consumption supports inbound access restrictions:
      // https://learn.microsoft.com/azure/azure-functions/functions-networking-options#inbound-access-restrictions
      ipSecurityRestrictionsDefaultAction: denyInboundHttp ? 'Deny' : 'Allow'
      scmIpSecurityRestrictionsUseMain: false
      scmIpSecurityRestrictionsDefaultAction: 'Allow'
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Flex Consumption sets the language here, not with FUNCTIONS_WORKER_RUNTIME or linuxFxVersion.
      // https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Publishing with a user name and password (FTP, scm basic auth) is off; deployments authenticate with Entra ID.
// https://learn.microsoft.com/azure/app-service/configure-basic-auth-disable
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
