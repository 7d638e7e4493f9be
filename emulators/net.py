"""Small networking helpers: free loopback ports and waiting for a port to accept connections."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def bind_loopback_socket(port: int = 0) -> socket.socket:
    """A TCP socket bound to 127.0.0.1 on `port` (0: a free one), ready to hand to a server (no race on the port).

    OSError if `port` is taken."""
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and accepted
    # sockets inherit it. With proto 0 every small response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def free_port() -> int:
    """A port that was free a moment ago, for processes that must bind it themselves (Azurite)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port and it can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, timeout: float, is_alive: Callable[[], bool] | None = None) -> None:
    """Block until 127.0.0.1:port accepts a connection; TimeoutError after `timeout`, RuntimeError as soon as
    `is_alive()` says the process meant to listen has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if is_alive is not None and not is_alive():
                raise RuntimeError(f"process meant to listen on port {port} exited") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.1f}s") from None
            time.sleep(0.02)
