from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from acme_scheduling import CronError, parse_cron
from acme_scheduling.actions import describe, matches, next_runs, validate_cron
from switchyard import InvalidInputError, Registry, call_action, load_config
from switchyard.testing import make_registry, run, use_registry

ACTIONS = (
    "scheduling.validate_cron",
    "scheduling.next_runs",
    "scheduling.describe",
    "scheduling.matches",
)


def iso(runs):
    return [r.isoformat() for r in runs]


def test_parse_expands_ranges_steps_names_and_sunday_seven():
    s = parse_cron("*/15 9-17/4 * jan,JUL mon-fri")
    assert sorted(s.minutes) == [0, 15, 30, 45]
    assert sorted(s.hours) == [9, 13, 17]
    assert sorted(s.months) == [1, 7]
    assert sorted(s.weekdays) == [1, 2, 3, 4, 5]
    assert sorted(parse_cron("0 0 * * 5-7").weekdays) == [0, 5, 6]
    assert sorted(parse_cron("5/20 * * * *").minutes) == [5, 25, 45]


def test_validate_cron_reports_the_field_at_fault():
    cases = {
        "61 * * * *": ("minute", "61 is out of range 0-59"),
        "* 24 * * *": ("hour", "24 is out of range 0-23"),
        "* * * * mon-fru": ("day_of_week", "'fru' is not a number 0-7 or one of sun"),
        "*/0 * * * *": ("minute", "step '0'"),
        "* * 10-2 * *": ("day_of_month", "runs backwards"),
        "0 0 30 2 *": ("day_of_month", "day 30 never occurs in February"),
        "* * * *": (None, "expected 5 fields"),
        "@reboot": (None, "unknown macro"),
    }
    for expression, (field, message) in cases.items():
        out = run(validate_cron, {"expression": expression})
        assert not out.valid, expression
        assert out.error is not None
        assert out.error.field == field, expression
        assert message in out.error.message, expression


def test_validate_cron_returns_the_expanded_fields():
    out = run(validate_cron, {"expression": "@weekly"})
    assert out.valid
    assert out.fields is not None
    assert (out.fields.minutes, out.fields.hours, out.fields.days_of_week) == ([0], [0], [0])
    assert len(out.fields.days_of_month) == 31


def test_next_runs_in_a_time_zone():
    out = run(
        next_runs,
        {
            "expression": "0 9 * * mon",
            "timezone": "Europe/Paris",
            "after": "2024-03-01T00:00:00Z",
            "count": 3,
        },
    )
    assert iso(out.runs) == [
        "2024-03-04T09:00:00+01:00",
        "2024-03-11T09:00:00+01:00",
        "2024-03-18T09:00:00+01:00",
    ]


def test_next_runs_is_strictly_after_the_start():
    out = run(
        next_runs, {"expression": "*/30 * * * *", "after": "2024-05-01T10:30:00Z", "count": 2}
    )
    assert iso(out.runs) == ["2024-05-01T11:00:00+00:00", "2024-05-01T11:30:00+00:00"]


def test_next_runs_skips_the_hour_lost_to_daylight_saving():
    data = {"expression": "30 2 * * *", "timezone": "Europe/Paris", "count": 2}
    out = run(next_runs, {**data, "after": "2024-03-30T00:00:00Z"})
    assert iso(out.runs) == ["2024-03-30T02:30:00+01:00", "2024-04-01T02:30:00+02:00"]


def test_next_runs_runs_a_repeated_time_once():
    data = {"expression": "30 2 * * *", "timezone": "Europe/Paris", "count": 2}
    out = run(next_runs, {**data, "after": "2024-10-26T12:00:00Z"})
    assert iso(out.runs) == ["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"]
    # Starting inside the second pass of the repeated hour: the first pass is already past.
    late = run(next_runs, {**data, "count": 1, "after": "2024-10-27T01:15:00Z"})
    assert iso(late.runs) == ["2024-10-28T02:30:00+01:00"]


def test_day_of_month_or_day_of_week_when_both_are_set():
    out = run(
        next_runs,
        {"expression": "0 0 13 * fri", "after": "2024-09-01T00:00:00Z", "count": 4},
    )
    assert [r.date().isoformat() for r in out.runs] == [
        "2024-09-06",
        "2024-09-13",
        "2024-09-20",
        "2024-09-27",
    ]


def test_leap_day_across_a_non_leap_century():
    out = run(next_runs, {"expression": "0 0 29 2 *", "after": "2097-01-01T00:00:00Z", "count": 1})
    assert iso(out.runs) == ["2104-02-29T00:00:00+00:00"]


@pytest.mark.parametrize(
    ("expression", "description"),
    [
        ("30 9 * * 1-5", "At 09:30, Monday through Friday"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("* * * * *", "Every minute"),
        ("0 9,17 * * *", "At 09:00 and 17:00"),
        ("*/10 9-17 * * *", "Every 10 minutes, between 09:00 and 17:59"),
        ("15 * * * *", "At minute 15 of every hour"),
        ("0 0 1,15 * *", "At 00:00, on day 1 and 15 of the month"),
        ("@yearly", "At 00:00, on day 1 of the month, in January"),
        ("0 0 13 * 5", "At 00:00, on day 13 of the month or Friday"),
        ("0 */6 * * *", "At 00:00, 06:00, 12:00 and 18:00"),
    ],
)
def test_describe(expression, description):
    assert run(describe, {"expression": expression}).description == description


def test_matches_reads_the_instant_in_the_time_zone():
    data = {"expression": "0 9 * * 1-5", "timezone": "Europe/Paris"}
    assert run(matches, {**data, "at": "2024-03-04T08:00:30Z"}).matches
    assert not run(matches, {**data, "at": "2024-03-04T09:00:00Z"}).matches
    assert not run(matches, {**data, "at": "2024-03-03T08:00:00Z"}).matches  # a Sunday


@pytest.mark.parametrize(
    ("act", "data", "field", "message"),
    [
        (next_runs, {"expression": "0 24 * * *"}, "expression", "hour field: 24 is out of range"),
        (next_runs, {"expression": "@daily", "timezone": "Mars/Olympus"}, "timezone", "unknown"),
        (next_runs, {"expression": "@daily", "after": "2024-01-01T00:00:00"}, "after", ""),
        (next_runs, {"expression": "@daily", "count": 0}, "count", ""),
        (describe, {"expression": ""}, "expression", ""),
        (matches, {"expression": "* * *", "at": "2024-01-01T00:00:00Z"}, "expression", "5 fields"),
        (validate_cron, {"expression": "* * * * *", "strict": True}, "strict", ""),
    ],
)
def test_bad_input_names_the_field(act, data, field, message):
    with pytest.raises(InvalidInputError) as info:
        run(act, data)
    assert [e.loc for e in info.value.errors] == [field]
    assert message in str(info.value)


def test_cron_error_is_a_value_error_with_the_field():
    with pytest.raises(CronError) as info:
        parse_cron("0 0 0 * *")
    assert info.value.field == "day_of_month"
    assert isinstance(info.value, ValueError)
    assert str(info.value) == "day_of_month field: 0 is out of range 1-31"


def test_call_action_through_an_in_memory_registry():
    with use_registry(make_registry(describe)):
        assert call_action("scheduling.describe", '{"expression": "@hourly"}').description == (
            "At minute 0 of every hour"
        )


def test_default_start_is_now():
    before = dt.datetime.now(dt.UTC)
    out = run(next_runs, {"expression": "* * * * *", "count": 1})
    assert before < out.runs[0] <= before + dt.timedelta(minutes=1)


def test_actions_are_registered_as_entry_points():
    registry = Registry.from_entry_points()
    for name in ACTIONS:
        assert registry.info(name).distribution == "acme-scheduling"
    assert registry.resolve("scheduling.next_runs") is next_runs


def test_root_routing_puts_the_actions_on_a_shared_queue():
    config = load_config(Path(__file__).parent)
    assert config.route("scheduling.next_runs") == "interactive"
