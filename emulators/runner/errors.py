"""Errors the local runner raises before it starts anything. Messages name the setting or binding at fault and
never include setting values (a connection string holds an account key)."""

from __future__ import annotations


class RunnerConfigError(ValueError):
    """host.json, local.settings.json, an app setting or a binding expression is missing or invalid."""


class FunctionLoadError(RunnerConfigError):
    """A function of the app cannot be loaded as the Functions host and Python worker would load it."""
