"""Start and stop Azurite (queue service), the real Azure Storage emulator, on a free 127.0.0.1 port.

Flags follow ../shared/reference/local-emulation.md §2: in memory, no telemetry, and `--skipApiVersionCheck`
because azure-storage-queue 12.18.1 sends x-ms-version 2026-10-06, newer than Azurite 3.35.0 knows.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from emulators.net import free_port, port_is_free, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
AZURITE_QUEUE = ROOT / "node_modules" / ".bin" / "azurite-queue"
# The documented, public development-storage account (not a secret):
# https://learn.microsoft.com/azure/storage/common/storage-use-azurite#well-known-storage-account-and-key
ACCOUNT = "devstoreaccount1"
DEVELOPMENT_STORAGE_QUEUE_PORT = 10001  # UseDevelopmentStorage=true -> http://127.0.0.1:10001/devstoreaccount1
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Azurite:
    """`preferred_port`: used when free (10001 is what `UseDevelopmentStorage=true` means), else a free one."""

    preferred_port: int | None = None
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def queue_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        account = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY}"
        return f"{account};QueueEndpoint={self.queue_url};"

    def start(self, timeout: float = 20.0) -> Azurite:
        if not AZURITE_QUEUE.exists():
            raise RuntimeError(f"{AZURITE_QUEUE} is missing: run `make deps` (npm ci) first")
        for attempt in range(3):  # the port is picked before Azurite binds it; retry if someone took it
            preferred = self.preferred_port if attempt == 0 and self.preferred_port else None
            self.port = preferred if preferred and port_is_free(preferred) else free_port()
            self._proc = subprocess.Popen(  # noqa: S603 - fixed executable and arguments
                [
                    str(AZURITE_QUEUE),
                    "--queueHost",
                    "127.0.0.1",
                    "--queuePort",
                    str(self.port),
                    "--inMemoryPersistence",
                    "--silent",
                    "--disableTelemetry",
                    "--skipApiVersionCheck",
                    "--loose",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl+C in a terminal reaches us, and we stop Azurite ourselves
            )
            try:
                wait_for_port(self.port, timeout, is_alive=self._is_running)
                return self
            except RuntimeError:
                continue
        raise RuntimeError("Azurite did not start: " + self._stderr_tail())

    def _is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _stderr_tail(self) -> str:
        if self._proc is None or self._proc.stderr is None or self._proc.poll() is None:
            return "(still running)"
        return self._proc.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
