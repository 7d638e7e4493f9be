// dataverse-sync: everything the Function App needs in one resource group, least privilege, identity-based only.
//
//   az group create --name <rg> --location <region>
//   az deployment group create --resource-group <rg> --template-file infra/main.bicep \
//     --parameters @infra/main.parameters.json
//
// One module per concern: identity, storage (host, deployment package, queues), keyvault, monitoring, alerts,
// roles (every role assignment, with the reason), functionapp (Flex Consumption). Resources are declared directly
// (no registry modules) so offline scanners can read them. infra/README.md is the deployment guide.

targetScope = 'resourceGroup'

// --- Naming ------------------------------------------------------------------------------------------------------

@description('Short prefix for resource names: 2-9 lowercase letters or digits (it is part of the storage account name).')
@minLength(2)
@maxLength(9)
param namePrefix string = 'dvsync'

@description('Region of every resource; it must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Tags applied to every resource.')
param tags object = {}

// --- The Dataverse application user ------------------------------------------------------------------------------

@description('Application (client) id of the Entra ID app registration that is the Dataverse application user.')
param dataverseClientId string

@description('Dataverse environments: name -> {url, tenant_id, tables: {logical name: {alternate_keys: [[...]]}}}. Stored as DATAVERSE_ENVIRONMENTS (JSON).')
param dataverseEnvironments object

@description('Name of the Key Vault certificate the app signs its client assertions with (imported by the operator).')
param dataverseCertificateName string = 'dataverse-sync-cert'

@description('Name of a Key Vault secret holding the PFX password, if the PFX is encrypted; empty: none.')
param dataverseCertificatePasswordSecret string = ''

@description('Send the x5c certificate chain in client assertions (subject name + issuer authentication).')
param dataverseSendCertificateChain bool = false

@description('Entra ID authority host; the default follows the cloud you deploy to (sovereign clouds included).')
param dataverseAuthorityHost string = environment().authentication.loginEndpoint

// --- Tuning (bounds as validated by shared/config/settings.py) -------------------------------------------------------

@minValue(1)
@maxValue(1000)
param dataverseBulkChunkSize int = 1000

@minValue(1)
@maxValue(52)
param dataverseMaxParallelism int = 8

@minValue(5)
@maxValue(600)
param dataverseRequestTimeoutSeconds int = 120

@description('Time budget of one invocation; keep it below host.json functionTimeout (10 min).')
@minValue(10)
@maxValue(3600)
param syncTimeBudgetSeconds int = 240

@minValue(1)
@maxValue(86400)
param certificateRefreshSeconds int = 900

@minValue(1)
@maxValue(365)
param certificateExpiryWarningDays int = 30

@minValue(0)
@maxValue(100)
param dependencyRetryLimit int = 5

@minValue(0)
@maxValue(86400)
param dependencyRetryDelaySeconds int = 60

@minValue(0)
@maxValue(100)
param poisonRequeueLimit int = 3

@minValue(0)
@maxValue(604800)
param poisonRequeueDelaySeconds int = 300

@minValue(1)
@maxValue(100000)
param bulkDrainMaxRecords int = 5000

@description('NCRONTAB (6 fields, UTC) of the bulk-queue drain timer.')
param bulkDrainSchedule string = '*/10 * * * * *'

@description('NCRONTAB (6 fields, UTC) of the daily health check.')
param healthCheckSchedule string = '0 0 6 * * *'

// --- Hosting -------------------------------------------------------------------------------------------------------

@description('Upper bound on Flex Consumption instances. Dataverse service protection, not compute, limits throughput.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 4

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Zone-redundant Flex Consumption plan (needs availability zones in the region; use ZRS storage with it).')
param zoneRedundant bool = false

@description('Storage replication: ZRS keeps queued records and dead letters through the loss of a zone.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_ZRS'

@description('Refuse all inbound HTTP to the app (it has no HTTP triggers); deployments still work.')
param denyInboundHttp bool = true

// --- Operations ----------------------------------------------------------------------------------------------------

@description('Object id of the operator (user or group) who imports the certificate and runs the CLI; empty: none.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('E-mail address for the dead-letter and failure alerts; empty: alerts show in the Azure portal only.')
param alertEmailAddress string = ''

// The sync core logs one event per dead-letter entry it writes (shared/sync, events carrying entry=<id>); tests/infra
// checks this pattern matches exactly those events.
@description('Regular expression (RE2, case-insensitive) matching the app\'s log events for dead-letter entries.')
param deadLetterLogPattern string = '(record[.]dead_lettered|record[.]invalid|message[.]dead_lettered)( |$)'

@description('Failed invocations plus error log lines per 15 minutes above which the failure alert fires.')
@minValue(0)
param failureAlertThreshold int = 5

@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionInDays int = 90

// --- Names -----------------------------------------------------------------------------------------------------------

var token = toLower(uniqueString(resourceGroup().id, namePrefix))
var storageAccountName = 'st${toLower(namePrefix)}${token}'
var keyVaultName = take('kv-${namePrefix}-${token}', 24)
var deploymentContainerName = 'app-package'

// The queues the app uses: must equal shared/queues/names.py ALL_QUEUES (tests/infra compares them).
var queueNames = [
  'dvsync-records'
  'dvsync-records-poison'
  'dvsync-bulk'
  'dvsync-deadletter'
]

// --- Resources -------------------------------------------------------------------------------------------------------

module identity 'identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${namePrefix}-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${namePrefix}-${token}'
    applicationInsightsName: 'appi-${namePrefix}-${token}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module storage 'storage.bicep' = {
  name: 'storage'
  params: {
    name: storageAccountName
    location: location
    tags: tags
    skuName: storageSkuName
    queueNames: queueNames
    deploymentContainerName: deploymentContainerName
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: keyVaultName
    location: location
    tags: tags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
  }
}

module roles 'roles.bicep' = {
  name: 'roles'
  params: {
    appPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module alerts 'alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    namePrefix: namePrefix
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    deadLetterLogPattern: deadLetterLogPattern
    failureThreshold: failureAlertThreshold
    alertEmailAddress: alertEmailAddress
  }
}

// Every app setting the app reads (shared/config/settings.py SETTING_NAMES and SCHEDULE_SETTINGS) plus the host's
// own. Local-only settings (LOCAL_CLOUD_CA_BUNDLE, KEYVAULT_VERIFY_CHALLENGE_RESOURCE, IDENTITY_*) are not set here;
// FUNCTIONS_WORKER_RUNTIME and WEBSITE_RUN_FROM_PACKAGE must not be set on Flex Consumption.
var appSettings = {
  // Host storage, identity-based: https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  // The queue trigger's connection (connection="SYNC_STORAGE"), identity-based:
  // https://learn.microsoft.com/azure/azure-functions/functions-reference#common-properties-for-identity-based-connections
  SYNC_STORAGE__queueServiceUri: storage.outputs.queueEndpoint
  SYNC_STORAGE__credential: 'managedidentity'
  SYNC_STORAGE__clientId: identity.outputs.clientId
  // Application Insights with Entra ID authentication (local auth is disabled):
  // https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication#environment-variable-configuration
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  // The app's own settings (names and meaning: README "Settings").
  AZURE_CLIENT_ID: identity.outputs.clientId
  KEYVAULT_URL: keyVault.outputs.uri
  DATAVERSE_CLIENT_ID: dataverseClientId
  DATAVERSE_CERT_NAME: dataverseCertificateName
  DATAVERSE_CERT_PASSWORD_SECRET: dataverseCertificatePasswordSecret
  DATAVERSE_SEND_CERT_CHAIN: string(dataverseSendCertificateChain)
  DATAVERSE_AUTHORITY_HOST: dataverseAuthorityHost
  DATAVERSE_ENVIRONMENTS: string(dataverseEnvironments)
  DATAVERSE_BULK_CHUNK_SIZE: string(dataverseBulkChunkSize)
  DATAVERSE_MAX_PARALLELISM: string(dataverseMaxParallelism)
  DATAVERSE_REQUEST_TIMEOUT_SECONDS: string(dataverseRequestTimeoutSeconds)
  SYNC_TIME_BUDGET_SECONDS: string(syncTimeBudgetSeconds)
  CERT_REFRESH_SECONDS: string(certificateRefreshSeconds)
  CERT_EXPIRY_WARNING_DAYS: string(certificateExpiryWarningDays)
  DEPENDENCY_RETRY_LIMIT: string(dependencyRetryLimit)
  DEPENDENCY_RETRY_DELAY_SECONDS: string(dependencyRetryDelaySeconds)
  POISON_REQUEUE_LIMIT: string(poisonRequeueLimit)
  POISON_REQUEUE_DELAY_SECONDS: string(poisonRequeueDelaySeconds)
  BULK_DRAIN_MAX_RECORDS: string(bulkDrainMaxRecords)
  BULK_DRAIN_SCHEDULE: bulkDrainSchedule
  HEALTH_CHECK_SCHEDULE: healthCheckSchedule
}

module functionApp 'functionapp.bicep' = {
  name: 'functionapp'
  params: {
    planName: 'asp-${namePrefix}-${token}'
    appName: 'func-${namePrefix}-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    zoneRedundant: zoneRedundant
    denyInboundHttp: denyInboundHttp
    appSettings: appSettings
  }
  // The host starts as soon as the app exists: grant its roles first so it does not begin with access errors.
  dependsOn: [
    roles
  ]
}

// --- Outputs an operator needs ------------------------------------------------------------------------------------

output functionAppName string = functionApp.outputs.name
output resourceGroupName string = resourceGroup().name
output storageAccountName string = storage.outputs.name
output queueNames array = queueNames
output queueUrls array = storage.outputs.queueUrls
output deploymentContainerUrl string = storage.outputs.deploymentContainerUrl
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output managedIdentityClientId string = identity.outputs.clientId
output managedIdentityPrincipalId string = identity.outputs.principalId
output applicationInsightsName string = monitoring.outputs.applicationInsightsName
output certificateImportCommand string = 'az keyvault certificate import --vault-name ${keyVault.outputs.name} --name ${dataverseCertificateName} --file <certificate.pfx>'
