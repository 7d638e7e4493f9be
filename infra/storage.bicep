// Storage account shared by the Functions host (AzureWebJobsStorage: leases, timer schedule status, keys), the
// Flex Consumption deployment package, and the sync queues. Only Entra ID (RBAC) access: shared keys are off, so a
// leaked connection string or SAS is worthless, and every reader is a principal in roles.bicep.

@description('Storage account name (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object

@description('Replication. ZRS keeps in-flight records and dead letters through the loss of one availability zone.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string

@description('Queues the app uses (shared/queues/names.py ALL_QUEUES, including poison and dead-letter).')
param queueNames array

@description('Blob container holding the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Log Analytics workspace receiving the queue service\'s write and delete logs (who sent, who deleted).')
param logAnalyticsWorkspaceId string

// Property names: https://learn.microsoft.com/azure/templates/microsoft.storage/2024-01-01/storageaccounts
// (API version as in Azure-Samples/azure-functions-flex-consumption-samples IaC/bicep/core/host/function.bicep).
resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  // checkov:skip=CKV_AZURE_35:The Flex Consumption app has no VNet integration in this template, so it reaches storage over the public endpoint; every request still needs an Entra ID token and an RBAC role (shared keys are disabled). See infra/README.md, 'Network isolation'. Default action Allow is therefore required.
  // checkov:skip=CKV_AZURE_59:The Flex Consumption app has no VNet integration in this template, so it reaches storage over the public endpoint; every request still needs an Entra ID token and an RBAC role (shared keys are disabled). See infra/README.md, 'Network isolation'. Public network access is therefore required.
  // checkov:skip=CKV_AZURE_206:Replication is the skuName parameter (default Standard_ZRS, geo-redundant SKUs allowed); checkov cannot evaluate a parameter, and zone redundancy is the chosen default because GRS/GZRS are not offered in every Flex Consumption region.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // Identity-based connections only (AzureWebJobsStorage__*, SYNC_STORAGE__*, deployment container):
    // https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    // A deleted deployment package or host blob can be restored for a week.
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption requires the deployment container to exist before the first publish:
// https://learn.microsoft.com/azure/azure-functions/flex-consumption-how-to#configure-deployment-settings
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

// Every queue the app uses, the poison queue included: the host would create `<queue>-poison` on first use, but
// creating it here lets operators and alerts see it from day one and keeps the app's role data-plane only.
resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

// Queue audit trail (CKV_AZURE_33): who sent, updated and deleted messages, e.g. a dead-letter purge or replay.
// StorageRead is left out: the host polls every few seconds, which would dominate ingestion cost.
// https://learn.microsoft.com/azure/storage/queues/monitor-queue-storage
resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'queue-audit'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
output queueUrls array = [for (queueName, i) in queueNames: '${storage.properties.primaryEndpoints.queue}${queues[i].name}']
