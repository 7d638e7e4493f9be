"""The Dataverse Web API client: a pipeline of small policies over one pooled `requests.Session` per environment,
bulk actions with `$batch` fallback and bad-record isolation, per-record outcomes. See docs/client.md."""

from shared.dataverse.client import ClientOptions, DataverseClient, WhoAmI
from shared.dataverse.environments import DataverseEnvironments
from shared.dataverse.errors import DataverseError, DataverseRequestFailed
from shared.dataverse.policies import EnvironmentUnavailable
from shared.dataverse.retry import RetryOptions

__all__ = [
    "ClientOptions",
    "DataverseClient",
    "DataverseEnvironments",
    "DataverseError",
    "DataverseRequestFailed",
    "EnvironmentUnavailable",
    "RetryOptions",
    "WhoAmI",
]
