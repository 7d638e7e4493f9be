"""`python -m emulators.runner`: run a Functions app locally until Ctrl+C / SIGTERM (or until idle).

    python -m emulators.runner [--app function_app:app] [--root .] [--settings FILE] [--host-json FILE]
                               [--setting NAME=VALUE ...] [--until-idle SECONDS] [--timeout SECONDS]
                               [--grace SECONDS] [--state-dir DIR]

The first SIGINT/SIGTERM stops gracefully (polling stops, running invocations get --grace seconds, unfinished
messages are released to be delivered again); a second one exits at once. Exit status: 0 after a clean stop,
1 if --until-idle timed out, 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from emulators.runner.app_settings import parse_overrides
from emulators.runner.errors import RunnerConfigError
from emulators.runner.host import LocalFunctionsHost

log = logging.getLogger("emulators.runner")


class _StopRequested(BaseException):
    """Raised in the main thread by the first SIGINT/SIGTERM (a BaseException, like KeyboardInterrupt, so that
    no `except Exception` on the way swallows it)."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulators.runner", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--root", type=Path, default=Path("."), help="project folder (host.json, settings)")
    parser.add_argument("--settings", type=Path, help="local.settings.json to use (default: root's, or sample)")
    parser.add_argument("--host-json", type=Path, help="host.json to use (default: root/host.json)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="app setting override (repeatable); wins over the file and the environment")  # fmt: skip
    parser.add_argument("--until-idle", type=float, metavar="SECONDS",
                        help="exit once every trigger queue is empty and nothing runs for SECONDS")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600.0, help="with --until-idle: give up after SECONDS")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds running invocations get at shutdown")
    parser.add_argument("--state-dir", type=Path, help="persist timer schedule status here (past-due runs)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def _install_signal_handlers() -> None:
    def first(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, second)
        signal.signal(signal.SIGTERM, second)
        log.info("%s received: stopping gracefully (again to exit at once)", signal.Signals(signum).name)
        raise _StopRequested

    def second(signum: int, _frame: FrameType | None) -> None:
        log.warning("%s received again: exiting now", signal.Signals(signum).name)
        os._exit(130)

    signal.signal(signal.SIGINT, first)
    signal.signal(signal.SIGTERM, first)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        host = LocalFunctionsHost(
            app=args.app,
            root=args.root,
            settings_overrides=parse_overrides(args.setting),
            host_json=args.host_json,
            settings_file=args.settings,
            state_dir=args.state_dir,
            shutdown_grace=args.grace,
        )
        _install_signal_handlers()
        host.start()
    except RunnerConfigError as exc:
        log.error("Configuration error: %s", exc)
        return 2
    except _StopRequested:
        return 0
    status = 0
    try:
        if args.until_idle is not None:
            host.run_until_idle(idle_seconds=args.until_idle, timeout=args.timeout)
        else:
            threading.Event().wait()
    except _StopRequested:
        pass
    except TimeoutError as exc:
        log.error("%s", exc)
        status = 1
    finally:
        host.stop()
    for name, stats in host.stats.items():
        log.info("%s: %s", name, stats.as_dict())
    return status


if __name__ == "__main__":
    sys.exit(main())
