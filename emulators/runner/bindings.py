"""Read each function's trigger and bindings from the v2-model app itself, as the Python worker indexes it.

The worker asks the `FunctionApp` for its functions (`app.get_functions()`) and sends each function's
`get_function_json()` (the generated function.json) to the host; so does this runner: nothing is kept by hand.
Binding properties get `%NAME%` resolution, queue names are lower-cased and validated like the Storage Queues
extension does (QueueTriggerAttributeBindingProvider.NormalizeAndValidate), and the function's parameters must
match its bindings as the worker checks at load time (azure-functions-python-worker, functions.py).
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import re
import sys
import typing
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta

from emulators.runner.app_settings import LocalSettings, connection_string, resolve_expressions
from emulators.runner.errors import FunctionLoadError, RunnerConfigError
from emulators.runner.ncrontab import InvalidSchedule, NcrontabSchedule
from emulators.runner.timespan import parse_timespan

log = logging.getLogger("emulators.runner")

QUEUE_TRIGGER = "queueTrigger"
TIMER_TRIGGER = "timerTrigger"
QUEUE_OUTPUT = "queue"
RETURN_BINDING = "$return"
CONTEXT_PARAMETER = "context"
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")  # 3-63 chars, no "--"


@dataclass(frozen=True)
class QueueTriggerSpec:
    parameter: str
    queue_name: str
    connection_name: str
    connection_string: str = field(repr=False)


@dataclass(frozen=True)
class TimerTriggerSpec:
    parameter: str
    schedule: NcrontabSchedule
    run_on_startup: bool
    use_monitor: bool | None  # None: the host's default (on unless it fires more than once a minute)


@dataclass(frozen=True)
class QueueOutputSpec:
    parameter: str  # "$return" for the function's return value
    queue_name: str
    connection_name: str
    connection_string: str = field(repr=False)


@dataclass(frozen=True)
class RetryPolicy:
    """An `@app.retry` policy (runtime retries; the host honours them on timer triggers only)."""

    strategy: str  # "fixed_delay" or "exponential_backoff"
    max_retry_count: int  # -1 retries forever
    delay_interval: timedelta = timedelta(0)
    minimum_interval: timedelta = timedelta(0)
    maximum_interval: timedelta = timedelta(0)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    user_function: Callable[..., Any]
    trigger: QueueTriggerSpec | TimerTriggerSpec
    outputs: tuple[QueueOutputSpec, ...]
    retry: RetryPolicy | None
    context_parameter: str | None
    raw_trigger_type: type | None  # str/bytes annotation: the payload itself instead of QueueMessage/TimerRequest
    is_async: bool
    function_json: dict[str, Any]


def converter(binding_type: str) -> Any:
    """The azure-functions converter class the worker uses for a binding type (queueTrigger, queue, ...)."""
    return meta.get_binding_registry().get(binding_type)  # type: ignore[no-untyped-call]


def load_app(spec: str) -> func.FunctionApp:
    """Import `module:attribute` (default attribute `app`); call `added_to_path(root)` first."""
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        raise RunnerConfigError(f"app {spec!r}: expected 'module:attribute', e.g. function_app:app")
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app", None)
    if app is None or not callable(getattr(app, "get_functions", None)):
        raise RunnerConfigError(f"app {spec!r}: {attribute or 'app'} is not an azure.functions.FunctionApp")
    return typing.cast(func.FunctionApp, app)


def read_functions(app: func.FunctionApp, local: LocalSettings) -> tuple[list[FunctionSpec], list[tuple[str, str]]]:
    """Specs of the functions the runner can drive, and (name, trigger type) of those it must skip."""
    specs: list[FunctionSpec] = []
    skipped: list[tuple[str, str]] = []
    for function in _indexed_functions(app):
        trigger = function.get_trigger()
        trigger_type = trigger.get_binding_name() if trigger is not None else "(none)"
        name = function.get_function_name() or function.get_user_function().__name__
        if trigger_type not in (QUEUE_TRIGGER, TIMER_TRIGGER):
            skipped.append((name, trigger_type))
            continue
        specs.append(_function_spec(name, function, local))
    return specs, skipped


def added_to_path(root: Path) -> str | None:
    """Put the script root first on sys.path (the worker runs with it there); the entry added, or None."""
    root_text = str(root.resolve())
    if root_text in sys.path:
        return None
    sys.path.insert(0, root_text)
    return root_text


_INDEXED: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def _indexed_functions(app: func.FunctionApp) -> list[Any]:
    """`app.get_functions()`, once per app object: the worker indexes once per process, and a second call on the
    same app fails its duplicate-name check (FunctionApp.validate_function_names keeps state)."""
    if app not in _INDEXED:
        try:
            _INDEXED[app] = app.get_functions()
        except ValueError as exc:
            raise FunctionLoadError(str(exc)) from None
    return _INDEXED[app]


def _function_spec(name: str, function: Any, local: LocalSettings) -> FunctionSpec:
    where = f"function '{name}'"
    function_json: dict[str, Any] = json.loads(function.get_function_json())
    trigger: QueueTriggerSpec | TimerTriggerSpec | None = None
    outputs: list[QueueOutputSpec] = []
    for binding in function_json["bindings"]:
        kind, direction, parameter = binding["type"], str(binding.get("direction", "")).upper(), binding["name"]
        binding_where = f"{where} binding '{parameter}' ({kind})"
        if kind == QUEUE_TRIGGER:
            trigger = _queue_trigger(binding, binding_where, local)
        elif kind == TIMER_TRIGGER:
            trigger = _timer_trigger(binding, binding_where)
        elif kind == QUEUE_OUTPUT and direction == "OUT":
            queue_name, connection, conn_string = _queue_target(binding, binding_where, local)
            outputs.append(QueueOutputSpec(parameter, queue_name, connection, conn_string))
        else:
            raise FunctionLoadError(
                f"{binding_where}: the local runner supports queue and timer triggers and queue output bindings "
                f"only (direction {direction or '?'})"
            )
    assert trigger is not None  # read_functions only passes functions with a supported trigger
    user_function = function.get_user_function()
    plan = _check_parameters(where, user_function, trigger, outputs)
    return FunctionSpec(
        name=name,
        user_function=user_function,
        trigger=trigger,
        outputs=tuple(outputs),
        retry=_retry_policy(function.get_settings_dict("retry_policy"), where),
        context_parameter=plan.context,
        raw_trigger_type=plan.raw_trigger_type,
        is_async=inspect.iscoroutinefunction(user_function),
        function_json=function_json,
    )


def _queue_trigger(binding: dict[str, Any], where: str, local: LocalSettings) -> QueueTriggerSpec:
    queue_name, connection, conn_string = _queue_target(binding, where, local)
    return QueueTriggerSpec(binding["name"], queue_name, connection, conn_string)


def _queue_target(binding: dict[str, Any], where: str, local: LocalSettings) -> tuple[str, str, str]:
    raw_name = resolve_expressions(str(binding.get("queueName", "")), where=where)
    queue_name = normalize_queue_name(raw_name, where=where)
    connection = resolve_expressions(str(binding.get("connection") or ""), where=where)
    return queue_name, connection or "AzureWebJobsStorage", connection_string(connection, where=where, local=local)


def normalize_queue_name(name: str, *, where: str) -> str:
    # "must be lowercase. coerce here to be nice." (QueueTriggerAttributeBindingProvider), then the service's
    # naming rules: https://learn.microsoft.com/rest/api/storageservices/naming-queues-and-metadata
    lowered = name.lower()
    if not 3 <= len(lowered) <= 63 or not _QUEUE_NAME.match(lowered):
        raise FunctionLoadError(
            f"{where}: invalid queue name {name!r}: 3-63 lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit"
        )
    return lowered


def _timer_trigger(binding: dict[str, Any], where: str) -> TimerTriggerSpec:
    expression = resolve_expressions(str(binding.get("schedule", "")), where=where)
    try:
        schedule = NcrontabSchedule(expression)
    except InvalidSchedule as exc:
        raise FunctionLoadError(f"{where}: {exc}") from None
    use_monitor = binding.get("useMonitor")
    return TimerTriggerSpec(
        parameter=binding["name"],
        schedule=schedule,
        run_on_startup=bool(binding.get("runOnStartup", False)),
        use_monitor=None if use_monitor is None else bool(use_monitor),
    )


def _retry_policy(raw: dict[str, Any] | None, where: str) -> RetryPolicy | None:
    if not raw:
        return None
    strategy = str(raw.get("strategy", "")).lower()
    try:
        max_retry_count = int(raw.get("max_retry_count", ""))
        if strategy == "fixed_delay":
            return RetryPolicy(strategy, max_retry_count, delay_interval=_interval(raw, "delay_interval", where))
        if strategy == "exponential_backoff":
            return RetryPolicy(
                strategy,
                max_retry_count,
                minimum_interval=_interval(raw, "minimum_interval", where),
                maximum_interval=_interval(raw, "maximum_interval", where),
            )
    except ValueError as exc:
        raise FunctionLoadError(f"{where}: invalid retry policy: {exc}") from None
    raise FunctionLoadError(f"{where}: retry strategy must be fixed_delay or exponential_backoff, got {strategy!r}")


def _interval(raw: dict[str, Any], key: str, where: str) -> timedelta:
    value = raw.get(key)
    if value is None:
        raise ValueError(f"{key} is required")
    return parse_timespan(str(value), what=f"{where} retry {key}")


@dataclass(frozen=True)
class _ParameterPlan:
    context: str | None
    raw_trigger_type: type | None  # str or bytes: the worker's "generic" binding passes the raw payload


def _check_parameters(
    where: str,
    user_function: Callable[..., Any],
    trigger: QueueTriggerSpec | TimerTriggerSpec,
    outputs: list[QueueOutputSpec],
) -> _ParameterPlan:
    """The Python worker's load-time checks (azure-functions-python-worker, functions.py Registry.add_function):
    every parameter is a binding or `context`, every binding a parameter, and annotations fit the bindings."""
    parameters = dict(inspect.signature(user_function).parameters)
    try:
        hints = typing.get_type_hints(user_function)
    except Exception as exc:
        raise FunctionLoadError(f"{where}: its type annotations cannot be resolved ({exc})") from None
    bound = {trigger.parameter} | {o.parameter for o in outputs if o.parameter != RETURN_BINDING}
    context = None
    if CONTEXT_PARAMETER in parameters and CONTEXT_PARAMETER not in bound:
        context = parameters.pop(CONTEXT_PARAMETER).name
        hint = hints.get(CONTEXT_PARAMETER)
        if hint is not None and (not isinstance(hint, type) or hint.__name__ != "Context"):
            raise FunctionLoadError(
                f'{where}: the "context" parameter is expected to be of type azure.functions.Context, got {hint!r}'
            )
    if set(parameters) - bound:
        raise FunctionLoadError(
            f"{where}: the following parameters are declared in Python but not in function.json: "
            f"{sorted(set(parameters) - bound)}"
        )
    if bound - set(parameters):
        raise FunctionLoadError(
            f"{where}: the following parameters are declared in function.json but not in Python: "
            f"{sorted(bound - set(parameters))}"
        )
    raw_type = _check_trigger_annotation(where, trigger, hints.get(trigger.parameter))
    for output in outputs:
        if output.parameter != RETURN_BINDING:
            _check_output_annotation(where, output.parameter, hints.get(output.parameter))
    return _ParameterPlan(context, raw_type)


def _check_trigger_annotation(where: str, trigger: QueueTriggerSpec | TimerTriggerSpec, hint: Any) -> type | None:
    if hint is None:
        return None
    name = trigger.parameter
    if hint is func.Out or typing.get_origin(hint) is func.Out:
        raise FunctionLoadError(
            f'{where}: binding {name} is declared to have the "in" direction in function.json, but its '
            "annotation is azure.functions.Out in Python"
        )
    if not isinstance(hint, type):
        raise FunctionLoadError(f"{where}: binding {name} has invalid non-type annotation {hint!r}")
    if hint in (str, bytes):
        return hint
    trigger_type = QUEUE_TRIGGER if isinstance(trigger, QueueTriggerSpec) else TIMER_TRIGGER
    if not converter(trigger_type).check_input_type_annotation(hint):
        raise FunctionLoadError(
            f'{where}: type of {name} binding in function.json "{trigger_type}" does not match its Python '
            f'annotation "{hint.__name__}"'
        )
    return None


def _check_output_annotation(where: str, name: str, hint: Any) -> None:
    if hint is None:
        return
    if typing.get_origin(hint) is not func.Out:
        raise FunctionLoadError(
            f'{where}: binding {name} is declared to have the "out" direction, but its annotation in Python is '
            "not a subclass of azure.functions.Out"
        )
    arguments = typing.get_args(hint)
    if len(arguments) != 1:
        raise FunctionLoadError(f"{where}: binding {name} has invalid Out annotation {hint!r}")
    inner = arguments[0]
    if inner not in (str, bytes) and not converter(QUEUE_OUTPUT).check_output_type_annotation(inner):
        raise FunctionLoadError(
            f'{where}: type of {name} binding in function.json "{QUEUE_OUTPUT}" does not match its Python '
            f'annotation "{getattr(inner, "__name__", inner)}"'
        )
