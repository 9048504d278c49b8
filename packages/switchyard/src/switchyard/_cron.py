"""Cron expressions and their firing times, in a time zone, across daylight-saving changes.

Five fields (minute hour day-of-month month day-of-week) with ``*``, numbers, names
(``jan``-``dec``, ``sun``-``sat``), ranges, steps and lists, ``7`` as Sunday, and the macros
``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``.
Day-of-month and day-of-week follow Vixie cron: when both are restricted, either one matches.

Times are wall-clock times in the schedule's zone, turned into instants with :mod:`zoneinfo`:

- a time that a spring-forward skips (02:30 in Berlin on the last Sunday of March) fires once,
  at the instant the clocks jump (03:00 CEST), unless the hour field is ``*``: a schedule that
  runs every hour runs by the clock, and the skipped hour has no times;
- a time that an autumn fall-back repeats (02:30 on the last Sunday of October) fires once, at
  its first occurrence, unless the hour field is ``*``, when it fires at both.

Imported only when a schedule is defined (the policy's checkers import it), not by
``import switchyard``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Final, final

if TYPE_CHECKING:
    from collections.abc import Iterator
    from zoneinfo import ZoneInfo

__all__ = ["Cron", "CronError", "parse_cron"]


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message names the field at fault."""


_MONTHS: Final = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_WEEKDAYS: Final = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# name, lowest, highest, names
_FIELDS: Final[tuple[tuple[str, int, int, dict[str, int]], ...]] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),  # 7 is Sunday too
)
MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MOST_DAYS: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MARGIN: Final = dt.timedelta(hours=3)  # more than any daylight-saving shift
_LIMIT_YEARS: Final = 8  # "0 0 29 2 mon" fires within 8 years (a leap day that is a Monday)


def _value(name: str, low: int, high: int, names: dict[str, int], text: str) -> int:
    if not text:
        raise CronError(f"{name} field: empty value (two commas, or a dangling '-' or '/'?)")
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        hint = f" or a name ({', '.join(names)})" if names else ""
        raise CronError(f"{name} field: {text!r} is not a number {low}-{high}{hint}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name} field: {value} is out of range {low}-{high}")
    return value


def _field(name: str, low: int, high: int, names: dict[str, int], text: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(
                    f"{name} field: step {step_text!r} in {part!r} must be a number > 0"
                )
            step = int(step_text)
        if base == "*":
            first, last = low, (6 if name == "day of week" else high)
        elif "-" in base:
            start, _, end = base.partition("-")
            first, last = _value(name, low, high, names, start), _value(name, low, high, names, end)
            if name == "day of week" and last == 0 and first > 0:
                last = 7  # "fri-sun" with Sunday as 0
            if first > last:
                raise CronError(f"{name} field: range {base!r} runs backwards ({first} > {last})")
        else:
            first = _value(name, low, high, names, base)
            last = high if slash else first  # "5/15" means 5-max/15
        values.update(range(first, last + 1, step))
    if name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@final
class Cron:
    """A parsed cron expression (build one with :func:`parse_cron`): each field's allowed values,
    and :meth:`next_after`, the next firing instant in a zone."""

    __slots__ = (
        "days",
        "days_restricted",
        "every_hour",
        "expression",
        "hours",
        "minutes",
        "months",
        "weekdays",
        "weekdays_restricted",
    )

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool
    every_hour: bool

    def __init__(self, expression: str, fields: list[frozenset[int]], texts: list[str]) -> None:
        minutes, hours, days, months, weekdays = fields
        self.expression = expression
        self.minutes = tuple(sorted(minutes))
        self.hours = tuple(sorted(hours))
        self.days = days
        self.months = months
        self.weekdays = weekdays
        self.days_restricted = not texts[2].startswith("*")
        self.weekdays_restricted = not texts[4].startswith("*")
        self.every_hour = len(hours) == 24

    def __repr__(self) -> str:
        return f"Cron({self.expression!r})"

    def matches_date(self, day: dt.date) -> bool:
        """Whether the expression fires at some time on ``day``."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def _walls(self, start: dt.datetime) -> Iterator[dt.datetime]:
        """Every matching naive wall time from ``start`` (on the minute), ascending, for up to
        eight years."""
        day = start.date()
        stop = day + dt.timedelta(days=366 * _LIMIT_YEARS)
        while day < stop:
            if self.matches_date(day):
                first = day == start.date()
                for hour in self.hours:
                    if first and hour < start.hour:
                        continue
                    for minute in self.minutes:
                        if first and hour == start.hour and minute < start.minute:
                            continue
                        yield dt.datetime(day.year, day.month, day.day, hour, minute)
            day += dt.timedelta(days=1)

    def _instants(self, wall: dt.datetime, zone: ZoneInfo) -> list[float]:
        """The instants (unix seconds) at which wall time ``wall`` fires in ``zone``."""
        earlier = wall.replace(tzinfo=zone, fold=0)
        later = wall.replace(tzinfo=zone, fold=1)
        first, second = earlier.timestamp(), later.timestamp()
        if first == second:
            return [first]
        utc = dt.UTC
        if dt.datetime.fromtimestamp(first, utc).astimezone(zone).replace(tzinfo=None) == wall:
            # repeated by a fall-back: fold 0 is the first occurrence
            return [first, second] if self.every_hour else [first]
        # skipped by a spring-forward
        if self.every_hour:
            return []
        low, high = min(first, second), max(first, second)
        after = later.utcoffset() if second == low else earlier.utcoffset()
        while high - low > 1:  # the instant of the jump, to the second
            middle = (low + high) // 2
            if dt.datetime.fromtimestamp(middle, zone).utcoffset() == after:
                high = middle
            else:
                low = middle
        return [float(int(high))]

    def next_after(self, after: float, zone: ZoneInfo) -> float | None:
        """The first firing instant (unix seconds, on a minute) later than ``after``, or None
        if the expression never fires again (within eight years)."""
        moment = dt.datetime.fromtimestamp(after, zone)
        wall = moment.replace(tzinfo=None, second=0, microsecond=0)
        start = wall - _MARGIN if _shifts_near(moment, zone) else wall
        best: float | None = None
        best_wall: dt.datetime | None = None
        for wall_time in self._walls(start):
            if best_wall is not None and wall_time > best_wall:
                break
            for instant in self._instants(wall_time, zone):
                if instant > after and (best is None or instant < best):
                    best = instant
                    found = dt.datetime.fromtimestamp(instant, zone)
                    best_wall = wall_time + _MARGIN if _shifts_near(found, zone) else wall_time
        return best


def _shifts_near(moment: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether the zone's offset changes within the margin around ``moment``."""
    offset = moment.utcoffset()
    return any(
        (moment + delta).astimezone(zone).utcoffset() != offset for delta in (-_MARGIN, _MARGIN)
    )


def parse_cron(expression: object) -> Cron:
    """A :class:`Cron` from a 5-field expression or a macro; CronError names the bad field."""
    if not isinstance(expression, str):
        raise CronError(f"must be a cron expression string, got {expression!r}")
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"unknown macro {text!r} (one of {', '.join(MACROS)})")
        text = MACROS[text.lower()]
    parts = text.split(" ") if text else []
    if len(parts) != len(_FIELDS):
        raise CronError(
            f"{expression!r} has {len(parts)} fields; a cron expression has 5: "
            "minute hour day-of-month month day-of-week"
        )
    try:
        fields = [_field(*spec, part) for spec, part in zip(_FIELDS, parts, strict=True)]
    except CronError as error:
        raise CronError(f"{expression!r}: {error}") from None
    days, months = fields[2], fields[3]
    only_days = not parts[2].startswith("*") and parts[4].startswith("*")
    if only_days and all(min(days) > _MOST_DAYS[m - 1] for m in months):
        raise CronError(f"{expression!r}: day {min(days)} never occurs in the months given")
    return Cron(expression, fields, parts)
