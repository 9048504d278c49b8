"""Plain-English descriptions of cron schedules: "At 09:30, Monday through Friday"."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from acme_scheduling._cron import MONTH_NAMES, CronSchedule

_WEEKDAY_NAMES: Final = (
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
)  # fmt: skip
_MAX_LISTED_TIMES: Final = 6


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _runs(values: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted values: [1, 2, 3, 5] -> [(1, 3), (5, 5)]."""
    out: list[tuple[int, int]] = []
    for v in sorted(values):
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _list(values: Iterable[int], name: Callable[[int], str]) -> str:
    parts: list[str] = []
    for low, high in _runs(values):
        if high - low >= 2:
            parts.append(f"{name(low)} through {name(high)}")
        else:
            parts.extend(name(v) for v in range(low, high + 1))
    return _join(parts)


def _step(values: frozenset[int], low: int, high: int) -> int | None:
    """The step n when ``values`` is exactly ``low, low+n, ...`` up to ``high``, n > 1."""
    ordered = sorted(values)
    if len(ordered) < 2 or ordered[0] != low:
        return None
    n = ordered[1] - ordered[0]
    return n if n > 1 and ordered == list(range(low, high + 1, n)) else None


def _time_phrase(s: CronSchedule) -> str:
    all_minutes = len(s.minutes) == 60
    all_hours = len(s.hours) == 24
    if len(s.minutes) == 1 and len(s.hours) <= _MAX_LISTED_TIMES:
        (minute,) = s.minutes
        return "at " + _join([f"{h:02d}:{minute:02d}" for h in sorted(s.hours)])
    if all_minutes:
        minute_part = "every minute"
    elif (n := _step(s.minutes, 0, 59)) is not None:
        minute_part = f"every {n} minutes"
    elif len(s.minutes) == 1:
        (minute,) = s.minutes
        minute_part = f"at minute {minute}"
    else:
        minute_part = f"at minutes {_list(s.minutes, str)}"
    if all_hours:
        return minute_part if not minute_part.startswith("at") else f"{minute_part} of every hour"
    runs = _runs(s.hours)
    if len(runs) == 1:
        low, high = runs[0]
        return f"{minute_part}, between {low:02d}:00 and {high:02d}:59"
    if (n := _step(s.hours, 0, 23)) is not None:
        return f"{minute_part}, every {n} hours"
    return f"{minute_part}, during hours {_list(s.hours, str)}"


def describe_schedule(schedule: CronSchedule) -> str:
    """One sentence saying when ``schedule`` runs."""
    phrase = _time_phrase(schedule)
    day_parts: list[str] = []
    if schedule.days_restricted:
        day_parts.append(f"on day {_list(schedule.days, str)} of the month")
    if schedule.weekdays_restricted:
        day_parts.append(_list(schedule.weekdays, lambda d: _WEEKDAY_NAMES[d]))
    if day_parts:
        joiner = " or " if len(day_parts) == 2 else ""
        phrase += ", " + joiner.join(day_parts)
    if len(schedule.months) < 12:
        phrase += f", in {_list(schedule.months, lambda m: MONTH_NAMES[m - 1])}"
    return phrase[0].upper() + phrase[1:]
