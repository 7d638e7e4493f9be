"""host.json as the Functions host reads it: the Storage Queues extension options and the function timeout.

App settings named `AzureFunctionsJobHost__<path>` override host.json values, `__` separating the levels
(`AzureFunctionsJobHost__extensions__queues__maxDequeueCount=3`), as the host applies them:
https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values

Defaults and limits follow the extension's QueuesOptions (Azure/azure-sdk-for-net,
sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/QueuesOptions.cs) and the
documented host.json section:
https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue#host-json
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from emulators.runner.errors import RunnerConfigError
from emulators.runner.timespan import parse_timespan

MAX_BATCH_SIZE = 32  # the Queue service returns at most 32 messages per Get Messages call
MIN_POLLING_INTERVAL = timedelta(milliseconds=100)  # QueuePollingIntervals.Minimum
# QueuePollingIntervals.DefaultMaximum is 1 minute, but the extension lowers it to 2 s when the host runs in
# the Development environment, which is what Core Tools (`func start`) does, and what this runner stands in for
# (StorageQueuesWebJobsBuilderExtensions.AddAzureStorageQueues).
DEVELOPMENT_MAX_POLLING_INTERVAL = timedelta(seconds=2)
ENCODINGS = ("base64", "none")
_QUEUE_KEYS = {
    "batchSize",
    "newBatchThreshold",
    "maxPollingInterval",
    "visibilityTimeout",
    "maxDequeueCount",
    "messageEncoding",
}


@dataclass(frozen=True)
class QueuesOptions:
    batch_size: int = 16
    new_batch_threshold: int = 8  # default: batchSize/2 x processor count, see from_section
    max_polling_interval: timedelta = DEVELOPMENT_MAX_POLLING_INTERVAL
    visibility_timeout: timedelta = timedelta(0)  # delay before a *failed* message is retried
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_section(cls, section: Mapping[str, Any], processor_count: int | None = None) -> QueuesOptions:
        where = "host.json extensions.queues"
        unknown = set(section) - _QUEUE_KEYS
        if unknown:
            raise RunnerConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_QUEUE_KEYS)}")
        batch_size = _int(section, "batchSize", 16, where)
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise RunnerConfigError(f"{where}.batchSize must be 1..{MAX_BATCH_SIZE}, got {batch_size}")
        cpus = processor_count or os.cpu_count() or 1
        threshold = _int(section, "newBatchThreshold", (batch_size // 2) * cpus, where)
        if threshold < 0:
            raise RunnerConfigError(f"{where}.newBatchThreshold must be >= 0, got {threshold}")
        polling = _timespan(section, "maxPollingInterval", DEVELOPMENT_MAX_POLLING_INTERVAL, where)
        if polling < MIN_POLLING_INTERVAL:
            raise RunnerConfigError(f"{where}.maxPollingInterval must not be less than 00:00:00.100")
        visibility = _timespan(section, "visibilityTimeout", timedelta(0), where)
        if visibility < timedelta(0):
            raise RunnerConfigError(f"{where}.visibilityTimeout must not be negative")
        max_dequeue = _int(section, "maxDequeueCount", 5, where)
        if max_dequeue < 1:
            raise RunnerConfigError(f"{where}.maxDequeueCount must not be less than 1")
        encoding = str(section.get("messageEncoding", "base64")).lower()
        if encoding not in ENCODINGS:
            raise RunnerConfigError(f"{where}.messageEncoding must be 'base64' or 'none', got {encoding!r}")
        return cls(batch_size, threshold, polling, visibility, max_dequeue, encoding)


@dataclass(frozen=True)
class HostConfig:
    queues: QueuesOptions
    function_timeout: timedelta | None  # None: unbounded (functionTimeout "-1")

    @classmethod
    def load(cls, source: Path | Mapping[str, Any], app_settings: Mapping[str, str] | None = None) -> HostConfig:
        """`app_settings`: where `AzureFunctionsJobHost__*` overrides are read (the runner passes its environment)."""
        data = _read(source) if isinstance(source, Path) else dict(source)
        data = with_overrides(data, app_settings or {})
        if str(data.get("version", "")) != "2.0":
            raise RunnerConfigError('host.json: "version" must be "2.0" (the Functions v4 host schema)')
        extensions = data.get("extensions") or {}
        queues = QueuesOptions.from_section(extensions.get("queues") or {})
        return cls(queues=queues, function_timeout=_function_timeout(data.get("functionTimeout")))


OVERRIDE_PREFIX = "AzureFunctionsJobHost__"
# Configuration keys are case-insensitive in .NET; an override names a key in any case, the section keeps this one.
_CANONICAL_KEYS = {key.lower(): key for key in (*_QUEUE_KEYS, "extensions", "queues", "functionTimeout", "version")}


def with_overrides(data: Mapping[str, Any], app_settings: Mapping[str, str]) -> dict[str, Any]:
    """host.json content with the `AzureFunctionsJobHost__a__b__c` app settings applied (values stay strings, as
    every configuration value is in .NET)."""
    result = _copy(data)
    prefix = OVERRIDE_PREFIX.lower()
    for name, value in app_settings.items():
        if not name.lower().startswith(prefix):
            continue
        *parents, leaf = name[len(OVERRIDE_PREFIX) :].split("__")
        section = result
        for part in parents:
            key = _existing_key(section, part)
            if not isinstance(section.get(key), dict):
                section[key] = {}
            section = section[key]
        section[_existing_key(section, leaf)] = value
    return result


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _copy(value) if isinstance(value, Mapping) else value for key, value in data.items()}


def _existing_key(section: Mapping[str, Any], name: str) -> str:
    lowered = name.lower()
    existing = next((key for key in section if key.lower() == lowered), None)
    return existing or _CANONICAL_KEYS.get(lowered, name)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunnerConfigError(f"host.json not found at {path}") from None
    except json.JSONDecodeError as exc:
        raise RunnerConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise RunnerConfigError(f"{path}: must be a JSON object")
    return data


def _function_timeout(raw: object) -> timedelta | None:
    # https://learn.microsoft.com/azure/azure-functions/functions-host-json#functiontimeout ("-1" = unbounded,
    # allowed on Premium/Dedicated/Flex). Default on Flex Consumption is 30 minutes.
    if raw is None:
        return timedelta(minutes=30)
    if str(raw).strip() == "-1":
        return None
    try:
        return parse_timespan(str(raw), what="host.json functionTimeout")
    except ValueError as exc:
        raise RunnerConfigError(str(exc)) from None


def _int(section: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = section.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():  # an app-setting override is text
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RunnerConfigError(f"{where}.{key} must be a whole number, got {value!r}")
    return value


def _timespan(section: Mapping[str, Any], key: str, default: timedelta, where: str) -> timedelta:
    if key not in section:
        return default
    try:
        return parse_timespan(str(section[key]), what=f"{where}.{key}")
    except ValueError as exc:
        raise RunnerConfigError(str(exc)) from None
