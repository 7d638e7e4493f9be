"""NCRONTAB schedules of timer triggers, evaluated as the Functions host evaluates them.

The host parses `schedule` with NCrontab (atifaziz/NCrontab) with seconds included: exactly six fields,
`{second} {minute} {hour} {day} {month} {day-of-week}`
(https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions).
NCrontab differs from Vixie cron in ways croniter would otherwise get wrong, so each field is parsed here and
expanded into an explicit list before croniter computes occurrences:
- day-of-month AND day-of-week must both match (NCrontab's TryGetNextOccurrence checks the weekday after the
  date); croniter's default ORs them, hence `day_or=False`;
- day-of-week is 0-6 (0 = Sunday); 7 is out of range;
- month and weekday names match by case-insensitive prefix of the full name ("T" is Tuesday, "Thu" Thursday)
  (NCrontab CrontabFieldImpl.ParseValue);
- `a/n` means from a to the field's maximum every n;
- no `?`, `L`, `W`, `#` or `H` (croniter extensions NCrontab would reject).
Occurrences are strictly after the base time, at whole seconds, like CrontabSchedule.GetNextOccurrence.
TimeSpan schedules ("00:05:00", App Service plans only) are not supported.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter
from croniter.croniter import CroniterBadDateError

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass(frozen=True)
class _Field:
    name: str
    minimum: int
    maximum: int
    names: tuple[str, ...] = ()


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 0, 6, _WEEKDAYS),
)
_ITEM = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>\d+))?$")


class InvalidSchedule(ValueError):
    """The schedule is not a six-field NCRONTAB expression the host would accept."""


class NcrontabSchedule:
    """`NcrontabSchedule("0 */5 * * * *").next_after(now)`; times are timezone-aware UTC datetimes."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        fields = expression.split()
        if len(fields) != 6:
            raise InvalidSchedule(
                f"{expression!r} must have 6 fields: second minute hour day month day-of-week "
                "(NCRONTAB, seconds first; TimeSpan schedules are not supported by the local runner)"
            )
        expanded = [_expand(text, spec, expression) for text, spec in zip(fields, _FIELDS, strict=True)]
        self._croniter_expression = " ".join(expanded)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after `moment` (None if the schedule can never fire, e.g. 30 Feb)."""
        base = moment.astimezone(UTC).replace(microsecond=0)
        iterator = croniter(self._croniter_expression, base, day_or=False, second_at_beginning=True)
        try:
            value: datetime = iterator.get_next(datetime)
        except CroniterBadDateError:
            return None
        return value.astimezone(UTC)

    def occurrences(self, start: datetime) -> Iterator[datetime]:
        """Every occurrence strictly after `start`, in order (finite only for a schedule that stops firing)."""
        moment = self.next_after(start)
        while moment is not None:
            yield moment
            moment = self.next_after(moment)

    def occurrences_within(self, start: datetime, span: timedelta) -> int:
        """How many occurrences fall in (start, start + span); used for the host's default of useMonitor."""
        end = start + span
        return sum(1 for _ in itertools.takewhile(lambda moment: moment < end, self.occurrences(start)))

    def __str__(self) -> str:
        return self.expression


def _expand(text: str, spec: _Field, expression: str) -> str:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise InvalidSchedule(f"{expression!r}: {item!r} is not a valid {spec.name} value (NCRONTAB)")
        step = int(match["step"]) if match["step"] is not None else 1
        if step < 1:
            raise InvalidSchedule(f"{expression!r}: the step in {item!r} must be at least 1")
        first, last = _bounds(match["range"], match["step"] is not None, spec, expression)
        values.update(range(first, last + 1, step))
    if values == set(range(spec.minimum, spec.maximum + 1)):
        return "*"
    return ",".join(str(v) for v in sorted(values))


def _bounds(text: str, stepped: bool, spec: _Field, expression: str) -> tuple[int, int]:
    if text == "*":
        return spec.minimum, spec.maximum
    if "-" in text:
        low, high = (_value(part, spec, expression) for part in text.split("-", 1))
        if low > high:
            # NCrontab accumulates nothing for a reversed range; refusing it is clearer than never firing.
            raise InvalidSchedule(f"{expression!r}: the {spec.name} range {text!r} runs backwards")
        return low, high
    value = _value(text, spec, expression)
    return (value, spec.maximum) if stepped else (value, value)


def _value(text: str, spec: _Field, expression: str) -> int:
    if text.isdecimal():
        value = int(text)
    else:
        lowered = text.lower()
        matches = [i for i, name in enumerate(spec.names) if name.lower().startswith(lowered)]
        if not matches:
            known = ", ".join(spec.names) if spec.names else "numbers only"
            raise InvalidSchedule(f"{expression!r}: {text!r} is not a {spec.name} ({known})")
        value = matches[0] + spec.minimum
    if not spec.minimum <= value <= spec.maximum:
        raise InvalidSchedule(
            f"{expression!r}: {spec.name} {value} is out of range {spec.minimum}-{spec.maximum}"
            + (" (0 = Sunday; NCRONTAB has no 7)" if spec.name == "day-of-week" else "")
        )
    return value
