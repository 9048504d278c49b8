"""A 5-field cron expression parser (minute hour day-of-month month day-of-week).

Supports ``*``, numbers, names (``jan``-``dec``, ``sun``-``sat``), ranges ``a-b``, steps
``*/n``, ``a-b/n`` and ``a/n``, lists ``a,b``, ``7`` as Sunday, and the macros ``@hourly``,
``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``. Day-of-month and
day-of-week follow Vixie cron: when both are restricted, a day matching either one runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final


class CronError(ValueError):
    """A cron expression that cannot be parsed; ``field`` names the part at fault."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field} field: {message}" if field else message)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_MONTHS: Final = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_WEEKDAYS: Final = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
FIELDS: Final = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day_of_month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day_of_week", 0, 7, _WEEKDAYS),  # 7 is Sunday too
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
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # at most
MONTH_NAMES: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression: the set of allowed values of each field."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches_date(self, day: dt.date) -> bool:
        """Whether the schedule runs at some time on ``day``."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def matches(self, moment: dt.datetime) -> bool:
        """Whether the schedule runs at the wall-clock minute of ``moment``."""
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and self.matches_date(moment.date())
        )


def _value(field: _Field, text: str) -> int:
    if not text:
        raise CronError(field.name, "empty value (two commas or a dangling '-' or '/'?)")
    lowered = text.lower()
    if lowered in field.names:
        return field.names[lowered]
    if not text.isdigit():
        hint = f" or one of {', '.join(field.names)}" if field.names else ""
        raise CronError(field.name, f"{text!r} is not a number {field.low}-{field.high}{hint}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(field.name, f"{value} is out of range {field.low}-{field.high}")
    return value


def _parse_field(field: _Field, text: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(
                    field.name, f"step {step_text!r} in {part!r} is not a whole number > 0"
                )
            step = int(step_text)
        if base == "*":
            low, high = field.low, field.high
            if field.name == "day_of_week":
                high = 6
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(field, first), _value(field, last)
            if field.name == "day_of_week" and high == 0 and low > 0:
                high = 7  # "fri-sun" written with sun as 0
            if low > high:
                raise CronError(field.name, f"range {base!r} runs backwards ({low} > {high})")
        else:
            low = _value(field, base)
            high = field.high if slash else low  # "5/15" means 5-max/15
        if step > high - low and slash and high > low:
            raise CronError(field.name, f"step {step} is larger than the range {low}-{high}")
        values.update(range(low, high + 1, step))
    if field.name == "day_of_week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def parse_cron(expression: str) -> CronSchedule:
    """Parse a 5-field cron expression or a macro; raise :class:`CronError` naming the field."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(None, f"unknown macro {text!r}; use one of {', '.join(MACROS)}")
        text = MACROS[text.lower()]
    parts = text.split(" ")
    if len(parts) != len(FIELDS) or not text:
        raise CronError(
            None,
            f"expected 5 fields (minute hour day_of_month month day_of_week), got "
            f"{len(parts) if text else 0}",
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(field, part) for field, part in zip(FIELDS, parts, strict=True)
    )
    days_restricted = not parts[2].startswith("*")
    weekdays_restricted = not parts[4].startswith("*")
    never = all(min(days) > _DAYS_IN_MONTH[m - 1] for m in months)
    if never and days_restricted and not weekdays_restricted:
        names = ", ".join(MONTH_NAMES[m - 1] for m in sorted(months))
        raise CronError("day_of_month", f"day {min(days)} never occurs in {names}")
    return CronSchedule(
        expression=expression,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        days_restricted=days_restricted,
        weekdays_restricted=weekdays_restricted,
    )
