// Every role assignment of the deployment, least privilege, each scoped to one resource (never the resource group or
// subscription) and each with the reason it is needed. Built-in role ids:
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
// Assignment names are guid(scope, principal, role) so redeployments are idempotent. New assignments can take about
// five minutes to apply: https://learn.microsoft.com/azure/role-based-access-control/troubleshooting#symptom---role-assignment-changes-are-not-being-detected

@description('Principal (object) id of the Function App\'s user-assigned managed identity.')
param appPrincipalId string

param storageAccountName string
param keyVaultName string
param applicationInsightsName string

@description('Object id of the operator (user or group) who imports the certificate and runs the CLI; empty: none.')
param operatorPrincipalId string

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// --- The app's managed identity ----------------------------------------------------------------------------------

// Storage Blob Data Owner (b7e6dc6d-f1e8-4753-8033-0f276bb0955b) on the storage account: the Functions host
// (AzureWebJobsStorage__*) creates its containers and takes blob leases (timer singletons, schedule status, keys);
// the docs name this role as the host's minimum. It also covers reading the deployment package container.
// https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'dataverse-sync: Functions host storage and deployment package'
  }
}

// Storage Queue Data Contributor (974c5e8b-45b9-4653-ba55-5f855dd0fb88) on the storage account: the queue trigger
// reads and deletes messages, the host moves failed messages to <queue>-poison (creating it if needed), and the app
// sends to the records queue (re-schedules) and to the dead-letter queue. Reader + Message Processor would not allow
// creating the poison queue or sending. https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#identity-based-connections
resource appQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'dataverse-sync: sync, poison and dead-letter queues'
  }
}

// Key Vault Secrets User (4633458b-17de-408a-b874-0445c86b69e6) on the vault: the app reads the certificate's PFX/PEM
// through the secret of the same name. Read only: not Secrets Officer, not Certificate User (which also allows
// reading certificate metadata it does not need). https://learn.microsoft.com/azure/key-vault/general/rbac-guide
resource appKeyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'dataverse-sync: read the Dataverse certificate'
  }
}

// Monitoring Metrics Publisher (3913510d-42f4-4e42-8a64-420c390055eb) on Application Insights: local auth is
// disabled, so telemetry is accepted only with the identity's token and this role.
// https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication
resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, '3913510d-42f4-4e42-8a64-420c390055eb')
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'dataverse-sync: send telemetry with Entra ID'
  }
}

// --- The operator (optional) -------------------------------------------------------------------------------------

// Key Vault Certificates Officer (a4417e6f-fecd-4de8-b567-7b0420556985) on the vault: import and rotate the Dataverse
// certificate (az keyvault certificate import). Certificates only: no access to other secrets or keys.
resource operatorCertificatesOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, 'a4417e6f-fecd-4de8-b567-7b0420556985')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'a4417e6f-fecd-4de8-b567-7b0420556985')
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    description: 'dataverse-sync operator: import and rotate the Dataverse certificate'
  }
}

// Storage Queue Data Contributor (974c5e8b-45b9-4653-ba55-5f855dd0fb88) on the storage account: shared keys are off,
// so the operator CLI (python -m shared enqueue / deadletter list|show|replay|purge) needs an Entra ID data role.
resource operatorQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(storage.id, operatorPrincipalId, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    description: 'dataverse-sync operator: enqueue records, inspect and replay dead letters'
  }
}
