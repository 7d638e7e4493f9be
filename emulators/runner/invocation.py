"""One function invocation as the Python worker performs it: arguments, `context`, `func.Out` values.

Trigger values are built with the azure-functions library's own converters (the `meta` binding registry the worker
uses), from the same data and trigger metadata the host sends: for a queue message `Id`, `DequeueCount`,
`InsertionTime`, `ExpirationTime`, `NextVisibleTime`, `PopReceipt`; for a timer the TimerInfo JSON
(`Schedule`, `ScheduleStatus`, `IsPastDue`). Output values are encoded with the library's output converters.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions import meta

# Not exported by azure.functions, but the abstract types func.Context's properties return.
from azure.functions._abc import RetryContext, RpcException, TraceContext

from emulators.runner.bindings import RETURN_BINDING, FunctionSpec, QueueOutputSpec, converter

T = TypeVar("T")


class OutValue(func.Out[T], Generic[T]):
    """The object a `func.Out[...]` parameter receives; the host reads it after the function returns."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


class _RetryContext(RetryContext):
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> RpcException:  # the worker passes the previous failure; none locally
        return None  # type: ignore[return-value]


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):
    """`context: func.Context`: invocation id, function name and directory, retry context."""

    def __init__(
        self, invocation_id: str, function_name: str, directory: str, retry_count: int, max_retry_count: int
    ) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._directory = directory
        self._retry_context = _RetryContext(retry_count, max_retry_count)
        self._thread_local = threading.local()
        self._thread_local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> RetryContext:
        return self._retry_context


def raw_trigger_value(payload: bytes, python_type: type) -> str | bytes:
    """The worker's generic binding for a `str` or `bytes` annotation: the payload itself."""
    if python_type is bytes:
        return payload
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload  # not text: the host sends bytes, and the generic binding passes them through


def queue_trigger_value(
    body: bytes, *, message_id: str, dequeue_count: int, insertion_time: str | None,
    expiration_time: str | None, next_visible_time: str | None, pop_receipt: str,
) -> Any:  # fmt: skip
    """An `azure.functions.queue.QueueMessage` with real metadata (`func.QueueMessage` would have none)."""
    try:
        datum = meta.Datum(body.decode("utf-8"), "string")
    except UnicodeDecodeError:
        datum = meta.Datum(body, "bytes")
    metadata = {
        "Id": meta.Datum(message_id, "string"),
        "DequeueCount": meta.Datum(json.dumps(dequeue_count), "json"),
        "InsertionTime": meta.Datum(insertion_time, "string"),
        "ExpirationTime": meta.Datum(expiration_time, "string"),
        "NextVisibleTime": meta.Datum(next_visible_time, "string"),
        "PopReceipt": meta.Datum(pop_receipt, "string"),
    }
    return converter("queueTrigger").decode(datum, trigger_metadata=metadata)


def timer_trigger_value(timer_info: Mapping[str, Any]) -> Any:
    """An `azure.functions.timer.TimerRequest` from the host's TimerInfo JSON."""
    datum = meta.Datum(json.dumps(timer_info), "json")
    return converter("timerTrigger").decode(datum, trigger_metadata=None)


@dataclass
class Outcome:
    succeeded: bool
    error: BaseException | None = None
    outputs: dict[str, list[str | bytes]] = field(default_factory=dict)  # output parameter -> messages


class AsyncRunner:
    """One event loop thread for `async def` functions (the worker runs coroutines on its own loop)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coroutine: Any) -> Any:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="runner-async-loop", daemon=True)
                self._thread.start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        with self._lock:
            if self._loop is not None and self._thread is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=5)
                self._loop.close()
            self._loop, self._thread = None, None


def invoke(spec: FunctionSpec, trigger_value: Any, context: InvocationContext, async_runner: AsyncRunner) -> Outcome:
    """Call the user function; on success, return the output binding values it set (as queue messages)."""
    arguments: dict[str, Any] = {spec.trigger.parameter: trigger_value}
    out_values: dict[str, OutValue[Any]] = {}
    for output in spec.outputs:
        if output.parameter != RETURN_BINDING:
            out_values[output.parameter] = arguments[output.parameter] = OutValue()
    if spec.context_parameter:
        arguments[spec.context_parameter] = context
    try:
        result = spec.user_function(**arguments)
        if spec.is_async:
            result = async_runner.run(result)
        outputs = {
            output.parameter: output_messages(
                output, result if output.parameter == RETURN_BINDING else out_values[output.parameter].get()
            )
            for output in spec.outputs
        }
    except Exception as exc:  # any exception fails the invocation, as in the worker
        return Outcome(succeeded=False, error=exc)
    return Outcome(succeeded=True, outputs=outputs)


def output_messages(output: QueueOutputSpec, value: Any) -> list[str | bytes]:
    """Queue messages for an output value: str/bytes is one message, a list is one message per item
    (https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-output#usage)."""
    if value is None:
        return []
    datum = converter("queue").encode(value, expected_type=None)
    if datum.type in ("string", "bytes"):
        return [datum.value]
    items = json.loads(datum.value)
    if not isinstance(items, list):
        items = [items]
    return [item if isinstance(item, str) else json.dumps(item) for item in items]
