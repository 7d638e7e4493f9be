"""The thread pool that runs invocations, like the Python worker's pool for synchronous functions.

Size: the app setting PYTHON_THREADPOOL_THREAD_COUNT when set, else Python's ThreadPoolExecutor default
min(32, cpus + 4), which is what the worker uses on Python 3.9+ when the setting is absent
(https://learn.microsoft.com/azure/azure-functions/python-scale-performance-reference#set-up-max-workers-within-a-language-worker-process).
Threads are daemons so that an invocation still running after the shutdown grace period cannot keep the process
alive (concurrent.futures joins its non-daemon threads at interpreter exit).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from emulators.runner.errors import RunnerConfigError

T = TypeVar("T")
_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


def default_pool_size(setting: str | None) -> int:
    if setting and setting.strip():
        try:
            size = int(setting)
        except ValueError:
            raise RunnerConfigError(f"PYTHON_THREADPOOL_THREAD_COUNT must be a whole number, got {setting!r}") from None
        if not 1 <= size <= 32:
            raise RunnerConfigError("PYTHON_THREADPOOL_THREAD_COUNT must be between 1 and 32")
        return size
    return min(32, (os.cpu_count() or 1) + 4)


class WorkerPool:
    def __init__(self, size: int, name: str = "runner-worker") -> None:
        self._size = size
        self._name = name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            if not self._threads:  # all threads at once, on first use: simple and race-free
                for index in range(self._size):
                    thread = threading.Thread(target=self._run, name=f"{self._name}-{index}", daemon=True)
                    self._threads.append(thread)
                    thread.start()
            self._work.put((future, function, args))
        return future

    def _run(self) -> None:
        while True:
            work = self._work.get()
            if work is None:
                return
            future, function, args = work
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args))
                except BaseException as exc:  # handed to whoever waits on the future
                    future.set_exception(exc)

    def shutdown(self) -> None:
        """Stop accepting work; idle threads exit, busy ones exit after their current item (no waiting)."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._work.put(None)
