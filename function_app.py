"""Azure Functions entry point (Python v2 programming model): bindings only; the work happens in shared/."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()
