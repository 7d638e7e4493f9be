// The Function App's user-assigned managed identity: one identity for host storage, the sync queues, Key Vault,
// Application Insights and the deployment container, so every grant is visible in roles.bicep and survives a
// re-created app. https://learn.microsoft.com/azure/azure-functions/functions-reference#configure-an-identity-based-connection

@description('Name of the user-assigned managed identity.')
param name string

param location string
param tags object

// API version: GA, as in the Azure Verified Module the Flex samples use (avm/res/managed-identity/user-assigned-identity).
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
