"""The scheduling actions: ``scheduling.validate_cron``, ``scheduling.next_runs``,
``scheduling.describe``, ``scheduling.matches``."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from switchyard import action

from acme_scheduling._cron import CronError, parse_cron
from acme_scheduling._describe import describe_schedule
from acme_scheduling._runs import is_due, iter_runs


def _check_cron(value: str) -> str:
    parse_cron(value)  # CronError is a ValueError: pydantic reports it on the field
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None
    return value


CronText = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_check_cron)]
TimeZone = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+\-/]*$"),
    AfterValidator(_check_zone),
]


class ValidateCronIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: str = Field(max_length=256)


class CronProblem(BaseModel):
    field: str | None
    message: str


class CronFields(BaseModel):
    minutes: list[int]
    hours: list[int]
    days_of_month: list[int]
    months: list[int]
    days_of_week: list[int]


class ValidateCronOut(BaseModel):
    valid: bool
    error: CronProblem | None = None
    fields: CronFields | None = None


@action(
    "scheduling.validate_cron",
    description="Check a cron expression; report the field at fault, or the expanded fields.",
)
def validate_cron(data: ValidateCronIn) -> ValidateCronOut:
    try:
        s = parse_cron(data.expression)
    except CronError as exc:
        return ValidateCronOut(valid=False, error=CronProblem(field=exc.field, message=exc.message))
    return ValidateCronOut(
        valid=True,
        fields=CronFields(
            minutes=sorted(s.minutes),
            hours=sorted(s.hours),
            days_of_month=sorted(s.days),
            months=sorted(s.months),
            days_of_week=sorted(s.weekdays),
        ),
    )


class NextRunsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: CronText
    timezone: TimeZone = "UTC"
    after: AwareDatetime | None = Field(default=None, description="default: now")
    count: int = Field(default=5, ge=1, le=500)


class NextRunsOut(BaseModel):
    timezone: str
    runs: list[AwareDatetime]


@action(
    "scheduling.next_runs",
    description="The next N run times of a cron expression in an IANA time zone (DST-aware).",
)
def next_runs(data: NextRunsIn) -> NextRunsOut:
    tz = ZoneInfo(data.timezone)
    after = data.after or dt.datetime.now(dt.UTC)
    runs = list(itertools.islice(iter_runs(parse_cron(data.expression), after, tz), data.count))
    return NextRunsOut(timezone=data.timezone, runs=runs)


class DescribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: CronText


class DescribeOut(BaseModel):
    description: str


@action("scheduling.describe", description="Say in English when a cron expression runs.")
def describe(data: DescribeIn) -> DescribeOut:
    return DescribeOut(description=describe_schedule(parse_cron(data.expression)))


class MatchesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expression: CronText
    at: AwareDatetime
    timezone: TimeZone = "UTC"


class MatchesOut(BaseModel):
    matches: bool


@action(
    "scheduling.matches",
    description="Whether a cron expression runs at the minute of a given instant.",
)
def matches(data: MatchesIn) -> MatchesOut:
    due = is_due(parse_cron(data.expression), data.at, ZoneInfo(data.timezone))
    return MatchesOut(matches=due)
