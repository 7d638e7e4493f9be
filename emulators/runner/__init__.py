"""The local Functions runner: the stand-in for the Azure Functions host where Core Tools cannot run.

It loads a v2-model `azure.functions.FunctionApp`, reads its bindings from the app itself, and drives its queue
and timer triggers with the host's documented semantics against Azurite. `func start` works with the same files
where Core Tools is installed. Behaviours and their sources: docs/local-runner.md.
"""

from emulators.runner.errors import FunctionLoadError, RunnerConfigError
from emulators.runner.host import LoadedFunction, LocalFunctionsHost
from emulators.runner.stats import FunctionStats

__all__ = ["FunctionLoadError", "FunctionStats", "LoadedFunction", "LocalFunctionsHost", "RunnerConfigError"]
