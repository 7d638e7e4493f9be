// Alerts an operator needs: records reaching the dead-letter queue, and failing invocations or error logs.
//
// Why log alerts and not a queue-length metric alert: the storage account's QueueMessageCount metric is reported
// for the whole queue service, with no queue-name dimension, so it cannot tell dead letters from the normal backlog
// of the records and bulk queues. https://learn.microsoft.com/azure/storage/queues/monitor-queue-storage-reference
// Instead the alerts query what the app itself logs to Application Insights: every dead-lettered record is logged
// with a fixed event name (deadLetterLogPattern), and function failures are recorded as failed requests.
// https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-create-log-alert-rule

param location string
param tags object
param namePrefix string

@description('Application Insights component the alert queries run against.')
param applicationInsightsId string

@description('Regular expression (RE2, case-insensitive) matching the app\'s log line for a dead-lettered record.')
param deadLetterLogPattern string

@description('Failed invocations plus error log lines per window above which the failure alert fires.')
@minValue(0)
param failureThreshold int

@description('E-mail address notified by both alerts; empty: alerts show in the portal only.')
param alertEmailAddress string

// https://learn.microsoft.com/azure/templates/microsoft.insights/2023-01-01/actiongroups
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: 'ag-${namePrefix}'
  location: 'global'
  tags: tags
  properties: {
    enabled: true
    groupShortName: take(namePrefix, 12)
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var alertActions = {
  actionGroups: empty(alertEmailAddress) ? [] : [actionGroup.id]
}

// https://learn.microsoft.com/azure/templates/microsoft.insights/2023-12-01/scheduledqueryrules
resource deadLetterAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-dead-letters'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dataverse-sync: records dead-lettered'
    description: 'Records reached the dead-letter queue (they can never succeed as sent). Inspect and replay them with "python -m shared deadletter list|show|replay".'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    scopes: [
      applicationInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: 'traces | where message matches regex "(?i)${deadLetterLogPattern}"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: alertActions
  }
}

resource failureAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dataverse-sync: failing invocations or errors'
    description: 'Function invocations failed (the host retries them and poisons a message after maxDequeueCount) or the app logged errors, e.g. Key Vault, token or Dataverse outages.'
    severity: 1
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    scopes: [
      applicationInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: 'union (requests | where success == false), (traces | where severityLevel >= 3)'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: failureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: alertActions
  }
}

output deadLetterAlertId string = deadLetterAlert.id
output failureAlertId string = failureAlert.id
