"""The local cloud: emulators of Entra ID, managed identity, Key Vault and the Dataverse Web API, the Azurite
launcher and the local Functions runner. Test and demo infrastructure only; `shared/` never imports it."""
