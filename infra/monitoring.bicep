// Log Analytics workspace and workspace-based Application Insights. Local (instrumentation key) authentication is
// disabled: the app's managed identity sends telemetry with Monitoring Metrics Publisher (roles.bicep) and
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING (functionapp.bicep).
// https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication

param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object

@description('Days Log Analytics keeps logs (dead-letter investigations need them; the first 31 days are included).')
@minValue(30)
@maxValue(730)
param retentionInDays int

// https://learn.microsoft.com/azure/templates/microsoft.operationalinsights/2023-09-01/workspaces
resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Only Entra ID with workspace or resource RBAC can read logs.
      disableLocalAuth: true
    }
  }
}

// https://learn.microsoft.com/azure/templates/microsoft.insights/2020-02-02/components
resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    // Telemetry only with an Entra ID token (the app's managed identity); the connection string alone is useless.
    DisableLocalAuth: true
  }
}

output workspaceId string = workspace.id
output applicationInsightsId string = applicationInsights.id
output applicationInsightsName string = applicationInsights.name
output connectionString string = applicationInsights.properties.ConnectionString
