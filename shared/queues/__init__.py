"""Azure Storage queue adapters: clients, producer helper, dead-letter store."""
