"""Run several ASGI apps (the emulators) on one asyncio event loop, each on its own 127.0.0.1 port.

uvicorn does the HTTP (keep-alive, concurrency, TLS); asyncio sets TCP_NODELAY on its sockets, so there is no
Nagle delay. The loop runs in a background thread (tests, `make run`) or in the main thread (`make cloud`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from emulators.net import bind_loopback_socket
from emulators.tls import LocalCA

ASGIApp = Callable[..., Any]
log = logging.getLogger(__name__)


@dataclass
class _Hosted:
    name: str
    server: uvicorn.Server
    sock: socket.socket
    url: str


@dataclass
class ServerGroup:
    """Start with `start()`, stop with `stop()` (or use as a context manager). Add apps before starting."""

    ca: LocalCA | None
    _hosted: list[_Hosted] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def add(self, name: str, app: ASGIApp, *, tls: bool = True, port: int = 0) -> str:
        """Host `app` on `port` if given and free, else on a fresh port; returns its base URL (https when `tls` and
        the group has a CA, else http)."""
        sock = _bind_preferred(port)
        port = sock.getsockname()[1]
        ca = self.ca if tls else None
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            # uvicorn's default log_config runs logging.config.dictConfig, which closes every handler the process
            # had configured (a demo's log file, pytest's capture); None keeps them, uvicorn logs propagate.
            log_config=None,
            lifespan="off",
            http="httptools",
            timeout_keep_alive=120,
            # Many clients keep a pooled connection each; allow generous concurrency (Dataverse allows 52+).
            limit_concurrency=None,
            backlog=2048,
            timeout_graceful_shutdown=2,
            ssl_certfile=str(ca.server_cert) if ca else None,
            ssl_keyfile=str(ca.server_key) if ca else None,
        )
        scheme = "https" if ca else "http"
        hosted = _Hosted(name, uvicorn.Server(config), sock, f"{scheme}://127.0.0.1:{port}")
        self._hosted.append(hosted)
        return hosted.url

    def url(self, name: str) -> str:
        return next(h.url for h in self._hosted if h.name == name)

    async def serve_all(self) -> None:
        """Serve every added app until each is told to exit."""
        await asyncio.gather(*(h.server.serve(sockets=[h.sock]) for h in self._hosted))

    def start(self, timeout: float = 10.0) -> ServerGroup:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_until_complete(self.serve_all())
            loop.close()

        self._thread = threading.Thread(target=run, name="local-cloud-servers", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        self.wait_started(timeout)
        return self

    def wait_started(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(h.server.started for h in self._hosted):
            if self._thread is not None and not self._thread.is_alive():
                raise RuntimeError("emulator servers stopped while starting")
            if time.monotonic() > deadline:
                raise TimeoutError("emulator servers did not start in time")
            time.sleep(0.005)

    def stop(self, timeout: float = 10.0, grace: float = 0.2) -> None:
        for hosted in self._hosted:
            hosted.server.should_exit = True
        if self._thread is not None:
            self._thread.join(grace)
            if self._thread.is_alive() and self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to abort
                    self._loop.call_soon_threadsafe(self._abort_idle_connections)
            self._thread.join(timeout)
            self._thread = None
        for hosted in self._hosted:
            hosted.sock.close()

    def _abort_idle_connections(self) -> None:
        """Drop keep-alive connections that carry no request (runs on the loop).

        On shutdown uvicorn closes idle connections and waits until they are gone; closing a TLS connection waits
        for the client's close_notify, which a pooled client connection (requests/urllib3) never sends, so every
        such connection would hold `stop()` for timeout_graceful_shutdown (2 s). In-flight requests still finish.
        """
        for hosted in self._hosted:
            for connection in list(hosted.server.server_state.connections):
                cycle = getattr(connection, "cycle", None)
                transport = getattr(connection, "transport", None)
                if transport is not None and (cycle is None or cycle.response_complete):
                    transport.abort()

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run fn on the servers' event loop (for state shared with async handlers)."""
        if self._loop is None:
            raise RuntimeError("servers are not running")
        self._loop.call_soon_threadsafe(fn)

    def __enter__(self) -> ServerGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bind_preferred(port: int) -> socket.socket:
    if port:
        try:
            return bind_loopback_socket(port)
        except OSError:
            log.info("port %d is taken; using a free port instead", port)
    return bind_loopback_socket()
