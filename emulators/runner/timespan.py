""".NET TimeSpan strings as host.json and retry policies write them ("00:00:30", "1.02:00:00", "00:00:00.200").

The Functions host binds these settings with .NET's TimeSpan parser; we accept its constant ("c") format
`[-][d.]hh:mm[:ss[.fffffff]]`: https://learn.microsoft.com/dotnet/standard/base-types/standard-timespan-format-strings
A bare number is refused on purpose: .NET reads "5" as five *days*, which is never what a host.json author means.
"""

from __future__ import annotations

import re
from datetime import timedelta

_TIMESPAN = re.compile(
    r"^(?P<sign>-)?(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})"
    r"(?::(?P<seconds>\d{1,2})(?:\.(?P<fraction>\d{1,7}))?)?$"
)


def parse_timespan(text: str, *, what: str) -> timedelta:
    """Parse a TimeSpan string; `what` names the setting in the error (e.g. "host.json extensions.queues...")."""
    match = _TIMESPAN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{what}: {text!r} is not a TimeSpan like '00:00:30' or '00:00:00.500' ([d.]hh:mm:ss[.f])")
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = int(match["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"{what}: {text!r} has an hour, minute or second out of range")
    fraction = match["fraction"] or "0"
    value = timedelta(
        days=int(match["days"] or 0),
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        microseconds=int(fraction.ljust(7, "0")) / 10,  # .NET ticks are 100 ns
    )
    return -value if match["sign"] else value
