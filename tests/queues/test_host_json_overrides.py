"""The handlers read the queue options the host really uses: host.json, overridden by app settings named
`AzureFunctionsJobHost__extensions__queues__<key>` (functions-host-json#override-hostjson-values). Without the
overrides, a deployment that lowers maxDequeueCount by app setting would be poisoned by the host before the
records handler writes its poison envelope, and the cause of the failure would be lost."""

from __future__ import annotations

import json
from pathlib import Path

from shared.queues.host_options import read_queue_host_options


def _host_json(tmp_path: Path, queues: dict[str, object]) -> Path:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}), encoding="utf-8")
    return path


def test_app_settings_override_host_json(tmp_path):
    path = _host_json(tmp_path, {"maxDequeueCount": 5, "visibilityTimeout": "00:00:30", "batchSize": 8})
    environ = {
        "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "3",
        "AZUREFUNCTIONSJOBHOST__EXTENSIONS__QUEUES__VISIBILITYTIMEOUT": "00:00:01",  # keys are case-insensitive
        "AzureFunctionsJobHost__extensions__blobs__maxDegreeOfParallelism": "4",  # another extension: ignored
    }
    options = read_queue_host_options(path, environ)
    assert (options.max_dequeue_count, options.visibility_timeout_seconds, options.batch_size) == (3, 1, 8)


def test_without_overrides_host_json_and_the_defaults_apply(tmp_path):
    options = read_queue_host_options(_host_json(tmp_path, {"maxDequeueCount": 4}), {})
    assert (options.max_dequeue_count, options.visibility_timeout_seconds, options.message_encoding) == (4, 0, "base64")
    missing = read_queue_host_options(
        tmp_path / "absent.json", {"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2"}
    )
    assert missing.max_dequeue_count == 2
