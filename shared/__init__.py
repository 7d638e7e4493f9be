"""dataverse-sync: the Function App's code shared by the functions in function_app.py.

Packages by concept: config (settings), identity (managed identity, Key Vault certificate, per-tenant
credentials), dataverse (Web API client), sync (pure core: contract, planning, outcomes), queues (Azure Storage
queue adapters), cli (operator commands). `bootstrap` is the composition root.
"""
