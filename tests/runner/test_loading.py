"""Loading an app: settings before import, bindings from the app, and the load errors the host would raise."""

from __future__ import annotations

import os

import pytest

from emulators.runner import FunctionLoadError, LocalFunctionsHost, RunnerConfigError
from tests.runner.conftest import HOST_JSON, QUEUE_APP, RUNNER_ROOT

BROKEN = "tests.runner.apps.broken_apps"


def _host(app: str, **overrides: str) -> LocalFunctionsHost:
    return LocalFunctionsHost(app=app, root=RUNNER_ROOT, settings_overrides=overrides, host_json=HOST_JSON)


@pytest.mark.parametrize(
    ("app", "problem"),
    [
        (f"{BROKEN}:extra_parameter", r"declared in Python but not in function.json: \['extra'\]"),
        (f"{BROKEN}:wrong_annotation", 'binding in function.json "queueTrigger" does not match'),
        (f"{BROKEN}:bad_schedule", "must have 6 fields"),
        (f"{BROKEN}:unsupported_binding", "binding 'blob' .* supports queue and timer triggers"),
        (f"{BROKEN}:http_only", "no queue- or timer-triggered function"),
        (f"{BROKEN}:bad_context", '"context" parameter is expected to be of type azure.functions.Context'),
        (f"{BROKEN}:output_not_out", "annotation in Python is not a subclass of azure.functions.Out"),
        (f"{BROKEN}:missing", "is not an azure.functions.FunctionApp"),
    ],
)
def test_apps_the_host_would_refuse_are_refused_with_the_reason(app, problem):
    with pytest.raises(RunnerConfigError, match=problem):
        _host(app).start()


def test_load_errors_are_function_load_errors():
    with pytest.raises(FunctionLoadError):
        _host(f"{BROKEN}:extra_parameter").start()


def test_an_unresolved_binding_expression_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("RUNNER_TEST_QUEUE", raising=False)
    settings = tmp_path / "local.settings.json"
    settings.write_text(
        '{"Values": {"RUNNER_STORAGE": "UseDevelopmentStorage=true", "RUNNER_TEST_OUTPUT_QUEUE": "runner-out"}}'
    )
    host = LocalFunctionsHost(app=QUEUE_APP, root=RUNNER_ROOT, host_json=HOST_JSON, settings_file=settings)
    with pytest.raises(RunnerConfigError, match="'%RUNNER_TEST_QUEUE%' does not resolve to a value"):
        host.start()


def test_an_identity_based_connection_is_refused_naming_the_setting():
    host = _host(QUEUE_APP, RUNNER_STORAGE="", RUNNER_STORAGE__queueServiceUri="https://acct.queue.core.windows.net")
    with pytest.raises(RunnerConfigError, match=r"RUNNER_STORAGE__queueServiceUri.*Azurite"):
        host.start()
    assert "RUNNER_STORAGE__queueServiceUri" not in os.environ  # a failed start restores the environment


@pytest.mark.parametrize(("count", "problem"), [("0", "must be between 1 and 32"), ("many", "must be a whole number")])
def test_a_worker_thread_count_the_worker_would_refuse_is_a_configuration_error(count, problem):
    with pytest.raises(RunnerConfigError, match=f"PYTHON_THREADPOOL_THREAD_COUNT {problem}"):
        _host(QUEUE_APP, PYTHON_THREADPOOL_THREAD_COUNT=count).start()


@pytest.mark.azurite
def test_settings_come_from_the_sample_file_and_are_set_before_import_and_restored(azurite):
    assert "RUNNER_FROM_FILE" not in os.environ
    host = _host(QUEUE_APP, RUNNER_STORAGE=azurite.connection_string)
    host.start()
    try:
        assert os.environ["RUNNER_FROM_FILE"] == "from-the-sample-file"  # tests/runner/local.settings.sample.json
        assert os.environ["AZURE_FUNCTIONS_ENVIRONMENT"] == "Development"
        assert [f.source for f in host.functions] == ["runner-default"]
    finally:
        host.stop(grace=0)
    assert "RUNNER_FROM_FILE" not in os.environ


@pytest.mark.azurite
def test_http_functions_are_skipped_not_fatal(make_host):
    host = make_host(app="tests.runner.apps.mixed_app:app", settings={"RUNNER_TEST_QUEUE": "runner-mixed"})
    assert [(f.name, f.trigger) for f in host.functions] == [("consume", "queueTrigger")]
    assert host.skipped_functions == [("health", "httpTrigger")]
