"""The local cloud in a child process, for measurements: its CPU and the app's CPU are then apart.

    with CloudProcess(state_dir) as cloud:
        cloud.app_settings          # what the app needs (cloud.json's app_settings)
        cloud.admin                 # DataverseAdmin on the emulator's admin API
        cloud.usage()               # CPU seconds and resident memory of the cloud and Azurite

Runs `python -m emulators.cloud --free-ports --state-dir DIR` (the same code as `make cloud`, docs/local-cloud.md),
waits for DIR/cloud.json, and stops it with SIGTERM (the cloud then stops Azurite), SIGKILL after 15 s.
The Dataverse emulator, the identity services and the Azurite it starts share no interpreter with the app, so
the emulator's TLS and JSON work does not compete with the app for the GIL (the machine's 2 cores are shared
all the same).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from emulators.dataverse.admin_client import DataverseAdmin

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float  # the cloud process and its children (Azurite), user + system
    peak_rss_mb: float  # the cloud process's high-water mark (VmHWM), plus Azurite's current RSS


class CloudProcess:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._child: subprocess.Popen[bytes] | None = None
        self.description: dict[str, Any] = {}
        self.admin: DataverseAdmin | None = None

    def __enter__(self) -> CloudProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> CloudProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cloud_json = self.state_dir / "cloud.json"
        cloud_json.unlink(missing_ok=True)
        log = (self.state_dir / "cloud.log").open("wb")
        self._child = subprocess.Popen(
            [sys.executable, "-m", "emulators.cloud", "--free-ports", "--state-dir", str(self.state_dir)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self.description = self._wait_for(cloud_json)
        except BaseException:
            self.stop()
            raise
        admin_url = self.description["endpoints"]["dataverse_admin"]
        self.admin = DataverseAdmin(admin_url, ca_bundle=self.description["ca_bundle"])
        return self

    def stop(self) -> None:
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        child, self._child = self._child, None
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def _wait_for(self, cloud_json: Path) -> dict[str, Any]:
        assert self._child is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._child.poll() is not None:
                log = (self.state_dir / "cloud.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the local cloud exited with {self._child.returncode}: {log}")
            if cloud_json.exists():
                try:
                    description: dict[str, Any] = json.loads(cloud_json.read_text(encoding="utf-8"))
                except ValueError:  # being written
                    pass
                else:
                    return description
            time.sleep(0.1)
        raise RuntimeError(f"the local cloud did not write {cloud_json} within {START_TIMEOUT_SECONDS:.0f} s")

    @property
    def app_settings(self) -> dict[str, str]:
        return dict(self.description["app_settings"])

    @property
    def ca_bundle(self) -> str:
        return str(self.description["ca_bundle"])

    @property
    def org_urls(self) -> dict[str, str]:
        return dict(self.description["endpoints"]["dataverse"])

    @property
    def startup_seconds(self) -> float:
        return float(self.description.get("startup_seconds", 0.0))

    def usage(self) -> Usage:
        assert self._child is not None
        process = psutil.Process(self._child.pid)
        children = process.children(recursive=True)
        cpu = sum(_cpu(p) for p in [process, *children])
        rss = _peak_rss_mb(process) + sum(_rss_mb(child) for child in children)
        return Usage(cpu, rss)


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _rss_mb(process: psutil.Process) -> float:
    try:
        return float(process.memory_info().rss) / 2**20
    except psutil.Error:
        return 0.0


def _peak_rss_mb(process: psutil.Process) -> float:
    """VmHWM (Linux): the peak resident set size; the current RSS elsewhere."""
    try:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _rss_mb(process)
