"""Next run times of a cron schedule in a time zone, honest about daylight-saving changes.

A schedule is read in wall-clock time of its zone. A wall-clock time that does not exist (in
the hour skipped when clocks go forward) is skipped; one that happens twice (when clocks go
back) runs once, at its first occurrence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Final
from zoneinfo import ZoneInfo

from acme_scheduling._cron import CronSchedule

# Long enough to find Feb 29 across a non-leap century year (2096 -> 2104).
HORIZON_DAYS: Final = 366 * 9


def _exists(naive: dt.datetime, tz: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=tz)
    back = aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
    return back == naive


def iter_runs(schedule: CronSchedule, after: dt.datetime, tz: ZoneInfo) -> Iterator[dt.datetime]:
    """Run times strictly after ``after`` (an aware datetime), as aware datetimes in ``tz``."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    after_utc = after.astimezone(dt.UTC)
    local = after.astimezone(tz)
    start = local.replace(tzinfo=None, second=0, microsecond=0) + dt.timedelta(minutes=1)
    minutes = sorted(schedule.minutes)
    hours = sorted(schedule.hours)
    day = start.date()
    for _ in range(HORIZON_DAYS):
        if schedule.matches_date(day):
            for hour in hours:
                for minute in minutes:
                    naive = dt.datetime.combine(day, dt.time(hour, minute))
                    if naive < start or not _exists(naive, tz):
                        continue
                    moment = naive.replace(tzinfo=tz)
                    # Compare in UTC: aware datetimes sharing a tzinfo compare by wall time,
                    # which is wrong when `after` is in the second pass of a repeated hour.
                    if moment.astimezone(dt.UTC) <= after_utc:
                        continue
                    yield moment
        day += dt.timedelta(days=1)


def is_due(schedule: CronSchedule, moment: dt.datetime, tz: ZoneInfo) -> bool:
    """Whether the schedule runs at the minute of ``moment`` (aware), read in ``tz``."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return schedule.matches(moment.astimezone(tz))
