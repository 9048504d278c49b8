"""Schedules in the core: cron parsing and firing times (DST in Europe/Berlin), intervals, the
catch-up plan, the policy options, [tool.switchyard.schedules], and load_schedules."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel
from switchyard import (
    ActionDefinitionError,
    ActionPolicy,
    Config,
    ConfigError,
    Registry,
    Schedule,
    action,
    load_config,
    load_schedules,
    write_manifest,
)

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, zone: ZoneInfo = BERLIN, fold: int = 0) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold).timestamp()


def fires(cron: str, start: str, n: int, zone: str = "Europe/Berlin") -> list[str]:
    """The next ``n`` firings after ``start`` (wall time in ``zone``), as local ISO times."""
    schedule = Schedule("s", "m.a", cron=cron, timezone=zone)
    tz = ZoneInfo(zone)
    moment = at(start, tz)
    out = []
    for _ in range(n):
        nxt = schedule.next_after(moment)
        assert nxt is not None
        moment = nxt
        out.append(datetime.fromtimestamp(moment, tz).isoformat())
    return out


# -- cron --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "'61 * * * *': minute field: 61 is out of range 0-59"),
        ("* 24 * * *", "hour field: 24 is out of range 0-23"),
        ("* * *", "has 3 fields; a cron expression has 5"),
        ("", "has 0 fields"),
        ("*/0 * * * *", "minute field: step '0' in '*/0' must be a number > 0"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("0 0 31 2 *", "day 31 never occurs in the months given"),
        ("0 0 * * funday", "day of week field: 'funday' is not a number 0-7 or a name"),
        ("@fortnightly", "unknown macro '@fortnightly'"),
        ("1,,2 * * * *", "minute field: empty value"),
    ],
)
def test_a_bad_cron_expression_names_its_field(cron, message):
    with pytest.raises(ValueError, match="cron ") as raised:
        Schedule("s", "m.a", cron=cron)
    assert message in str(raised.value)


def test_cron_fields_names_steps_lists_and_macros():
    assert fires("*/20 9-10 * * mon-fri", "2026-12-04T10:30", 3) == [
        "2026-12-04T10:40:00+01:00",
        "2026-12-07T09:00:00+01:00",  # Friday, then Monday
        "2026-12-07T09:20:00+01:00",
    ]
    assert fires("@monthly", "2026-12-04T10:30", 2, "UTC") == [
        "2027-01-01T00:00:00+00:00",
        "2027-02-01T00:00:00+00:00",
    ]
    # day of month OR day of week when both are restricted (Vixie cron)
    assert fires("0 12 13 * fri", "2026-02-01T00:00", 3, "UTC") == [
        "2026-02-06T12:00:00+00:00",
        "2026-02-13T12:00:00+00:00",
        "2026-02-20T12:00:00+00:00",
    ]
    assert fires("0 3 29 2 *", "2026-01-01T00:00", 2) == [
        "2028-02-29T03:00:00+01:00",
        "2032-02-29T03:00:00+01:00",
    ]
    assert fires("0 0 * * 7", "2026-12-04T00:00", 1, "UTC") == ["2026-12-06T00:00:00+00:00"]


def test_spring_forward_a_skipped_time_fires_once_when_the_clocks_jump():
    # 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST
    assert fires("30 2 * * *", "2026-03-28T12:00", 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    # every minute of the skipped hour collapses into the one instant of the jump
    assert fires("*/15 2 * * *", "2026-03-29T00:00", 2) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ]


def test_spring_forward_an_hourly_schedule_runs_by_the_clock():
    assert fires("0 * * * *", "2026-03-29T00:30", 3) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00 does not exist: one hour of real time later
        "2026-03-29T04:00:00+02:00",
    ]


def test_fall_back_a_repeated_time_fires_once_at_its_first_occurrence():
    # 2026-10-25: Berlin falls back from 03:00 CEST to 02:00 CET
    assert fires("30 2 * * *", "2026-10-24T12:00", 2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_fall_back_an_hourly_schedule_fires_in_both_hours():
    assert fires("30 * * * *", "2026-10-25T01:00", 4) == [
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]
    # from inside the first 02:xx hour, the second one comes next
    schedule = Schedule("s", "m.a", cron="0 * * * *", timezone="Europe/Berlin")
    nxt = schedule.next_after(at("2026-10-25T02:50", fold=0))
    assert nxt is not None
    assert datetime.fromtimestamp(nxt, UTC).isoformat() == "2026-10-25T01:00:00+00:00"


def test_fall_back_in_utc_nothing_special():
    assert fires("30 2 * * *", "2026-10-24T12:00", 2, "UTC") == [
        "2026-10-25T02:30:00+00:00",
        "2026-10-26T02:30:00+00:00",
    ]


# -- intervals, ticks and the catch-up plan -----------------------------------------------------


def test_an_interval_is_anchored_at_the_epoch():
    schedule = Schedule("s", "m.a", every="30s")
    assert schedule.next_after(1000.0) == 1020.0
    assert schedule.next_after(1020.0) == 1050.0
    assert list(schedule.ticks(1000.0, 1080.0)) == [1020.0, 1050.0, 1080.0]
    assert schedule.count(1000.0, 1080.0) == 3
    assert schedule.when == "every 30s"
    assert Schedule("s", "m.a", every="1s").when == "every 1s"


def test_the_plan_fires_ticks_on_time_whatever_the_policy():
    for catchup in ("none", "latest", "all within 1h"):
        schedule = Schedule("s", "m.a", every="1s", catchup=catchup)
        # a failover: the last holder handled 100, it is 103 now, grace 5 s
        assert schedule.plan(100.0, 103.5, 5.0) == [101.0, 102.0, 103.0]


def test_the_plan_after_downtime_follows_the_catch_up_policy():
    def plan(catchup: str) -> list[float]:
        return Schedule("s", "m.a", every="10s", catchup=catchup).plan(1000.0, 1105.0, 5.0)

    assert plan("none") == []  # 1100 is 5 s old: missed
    assert plan("latest") == [1100.0]
    assert plan("all within 1h") == [1010.0 + 10 * i for i in range(10)]
    assert plan("all within 30s") == [1080.0, 1090.0, 1100.0]
    schedule = Schedule("s", "m.a", every="10s", catchup="latest")
    assert schedule.plan(1000.0, 1106.0, 3.0) == [1100.0]
    assert schedule.plan(1000.0, 1102.0, 3.0) == [1090.0, 1100.0]  # latest missed, then on time


def test_latest_of_a_rare_cron_looks_far_back():
    schedule = Schedule("s", "m.a", cron="0 3 1 1 *", catchup="latest")
    last = at("2020-06-01T00:00", UTC)
    now = at("2026-12-05T10:00", UTC)
    assert schedule.plan(last, now, 10.0) == [at("2026-01-01T03:00", UTC)]


# -- the Schedule's checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "* * * * *", "every": "1m"}, "either cron"),
        ({}, "needs cron"),
        ({"every": "0.5s"}, "every must be a whole number of seconds >= 1"),
        ({"every": "soon"}, "every must be an interval > 0"),
        ({"every": -5}, "every must be an interval > 0"),
        ({"every": "1m", "timezone": "Europe/Berlin"}, "timezone is for cron schedules"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "got 'Mars/Olympus'"),
        ({"cron": "* * * * *", "overlap": "never"}, "overlap must be 'skip', 'queue' or 'allow'"),
        ({"cron": "* * * * *", "catchup": "all"}, "catchup must be 'none', 'latest' or"),
        ({"cron": "* * * * *", "data": [1, 2]}, "data must be a mapping"),
    ],
)
def test_a_bad_schedule_says_what_is_wrong(options, message):
    with pytest.raises(ValueError) as raised:
        Schedule("s", "m.a", **options)
    assert message in str(raised.value)


def test_a_bad_schedule_name():
    with pytest.raises(ValueError, match="schedule name 'a b'"):
        Schedule("a b", "m.a", every="1m")


# -- options on the action ---------------------------------------------------------------------


class Report(BaseModel):
    kind: str
    days: int = 1


class Done(BaseModel):
    ok: bool = True


def report(data: Report) -> Done:
    return Done()


def test_an_action_declares_its_schedule_in_its_policy():
    built = action(
        "reports.build",
        schedule="0 3 * * *",
        timezone="Europe/Berlin",
        schedule_data={"kind": "daily"},
        overlap="queue",
        catchup="all within 2h",
    )(report)
    policy = built.policy
    assert (policy.schedule, policy.timezone, policy.overlap, policy.catchup) == (
        "0 3 * * *", "Europe/Berlin", "queue", "all within 2h",
    )  # fmt: skip
    assert json.loads(policy.schedule_data or "") == {"kind": "daily"}
    assert policy.scheduled
    assert ActionPolicy.from_json(json.loads(json.dumps(policy.to_json()))) == policy
    every = action("reports.tick", every="30s", schedule_data={"kind": "x"})(report).policy
    assert (every.every, every.schedule) == (30, None)
    assert not action("reports.plain")(report).policy.scheduled


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "61 * * * *"}, "schedule '61 * * * *': minute field: 61 is out of range"),
        ({"schedule": "* * * * *", "every": "1s"}, "give either schedule (cron) or every"),
        ({"every": "1.5s"}, "every must be a whole number of seconds >= 1"),
        ({"schedule": "0 3 * * *", "timezone": "Nowhere/Town"}, "got 'Nowhere/Town'"),
        ({"every": "1m", "timezone": "Europe/Berlin"}, "timezone is for schedule (cron)"),
        ({"timezone": "Europe/Berlin"}, "timezone needs schedule (cron) or every"),
        ({"schedule_data": {"kind": "x"}}, "schedule_data needs schedule (cron) or every"),
        (
            {"every": "1m"},
            "schedule_data does not fit the input model Report: kind: Field required",
        ),
        (
            {"every": "1m", "schedule_data": {"kind": "x", "days": "many"}},
            "schedule_data does not fit the input model Report: days: Input should be a valid",
        ),
        ({"every": "1m", "schedule_data": "not json"}, "schedule_data must be a mapping"),
        ({"every": "1m", "overlap": "sometimes"}, "overlap must be 'skip', 'queue' or 'allow'"),
        ({"every": "1m", "catchup": "everything"}, "catchup must be 'none', 'latest' or"),
    ],
)
def test_a_bad_schedule_option_fails_the_definition_naming_the_action(options, message):
    with pytest.raises(ActionDefinitionError) as raised:
        action("reports.bad", **options)(report)
    assert str(raised.value).startswith("action reports.bad: ")
    assert message in str(raised.value)


# -- [tool.switchyard.schedules] ----------------------------------------------------------------

PYPROJECT = """\
[tool.switchyard]
default-queue = "default"

[tool.switchyard.schedules]
nightly = { action = "reports.build", cron = "0 3 * * *", timezone = "Europe/Berlin", data = { kind = "daily" } }

[tool.switchyard.schedules.tick]
action = "reports.build"
every = "30s"
data = { kind = "tick", days = 2 }
overlap = "allow"
catchup = "none"
"""  # noqa: E501


def write(tmp_path, text: str):
    path = tmp_path / "pyproject.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_pyproject_table_is_read_into_schedules(tmp_path):
    path = write(tmp_path, PYPROJECT)
    config = load_config(tmp_path)
    nightly, tick = config.schedules
    assert (nightly.name, nightly.action, nightly.cron, nightly.timezone) == (
        "nightly", "reports.build", "0 3 * * *", "Europe/Berlin",
    )  # fmt: skip
    assert nightly.source == f"{path}:5"
    assert (tick.every, tick.overlap, str(tick.catchup), json.loads(tick.data)) == (
        30, "allow", "none", {"kind": "tick", "days": 2},
    )  # fmt: skip
    assert tick.source == f"{path}:7"
    assert load_config(tmp_path) == config  # hashable, comparable


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('x = { action = "reports.build", cron = "61 * * * *" }', "x: cron '61 * * * *': minute"),
        ('x = { action = "reports.build", cron = "0 3 * * *", timezone = "Mars/Base" }',
         "x: timezone must be an IANA time zone name"),
        ('x = { action = "reports.build", every = "0s" }', "x: every must be an interval > 0"),
        ('x = { action = "reports.build", every = "fast" }', "x: every must be an interval"),
        ('x = { action = "reports.build", cron = "* * * * *", every = "1s" }', "x: give either"),
        ('x = { action = "reports.build" }', "x: needs cron"),
        ('x = { cron = "* * * * *" }', 'x: needs action = "<module>.<verb_noun>"'),
        ('x = { action = "reports.build", every = "1s", when = "now" }', "x: unknown key 'when'"),
        ('x = "0 3 * * *"', "x: must be a table such as"),
        ('"a b" = { action = "reports.build", every = "1s" }', "schedule name 'a b'"),
    ],
)  # fmt: skip
def test_a_bad_pyproject_schedule_names_file_and_line(tmp_path, entry, message):
    path = write(tmp_path, f"[tool.switchyard]\n\n[tool.switchyard.schedules]\n{entry}\n")
    config = load_config(tmp_path)  # start-up does not parse the table: reading it does
    with pytest.raises(ConfigError) as raised:
        _ = config.schedules
    text = str(raised.value)
    assert "\n" not in text
    assert text.startswith(f"{path}:4: [tool.switchyard.schedules] "), text
    assert message in text


def test_schedules_must_be_a_table(tmp_path):
    write(tmp_path, '[tool.switchyard]\nschedules = "nightly"\n')
    with pytest.raises(ConfigError, match="schedules must be a table"):
        _ = load_config(tmp_path).schedules


# -- load_schedules -----------------------------------------------------------------------------


def registry_of(*extra):
    base = action("reports.build")(report)
    return Registry.from_actions(base, *extra)


def test_load_schedules_joins_pyproject_and_action_schedules(tmp_path):
    write(tmp_path, PYPROJECT)
    declared = action("reports.tick", every="1m", schedule_data={"kind": "t"})(report)
    found = load_schedules(load_config(tmp_path), registry_of(declared))
    assert [(s.name, s.action, s.source.rpartition(":")[0] or s.source) for s in found] == [
        ("nightly", "reports.build", str(tmp_path / "pyproject.toml")),
        ("reports.tick", "reports.tick", "action reports.tick"),
        ("tick", "reports.build", str(tmp_path / "pyproject.toml")),
    ]
    assert [s.name for s in load_schedules(load_config(tmp_path), registry_of(declared),
                                           resolve=False)] == ["nightly", "tick"]  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('x = { action = "reports.biuld", every = "1s", data = { kind = "a" } }',
         "x: unknown action 'reports.biuld' (did you mean 'reports.build'?)"),
        ('x = { action = "reports.build", every = "1s" }',
         "x: invalid input for reports.build: kind: Field required"),
        ('x = { action = "reports.build", every = "1s", data = { kind = 5 } }',
         "x: invalid input for reports.build: kind: Input should be a valid string"),
    ],
)  # fmt: skip
def test_load_schedules_checks_the_action_and_its_data(tmp_path, entry, message):
    path = write(tmp_path, f"[tool.switchyard]\n\n[tool.switchyard.schedules]\n{entry}\n")
    with pytest.raises(ConfigError) as raised:
        load_schedules(load_config(tmp_path), registry_of())
    assert str(raised.value) == f"{path}:4: [tool.switchyard.schedules] {message}"


def test_an_unknown_action_is_found_without_importing_anything(tmp_path):
    write(tmp_path, '[tool.switchyard.schedules]\nx = { action = "nope.nothing", every = "1s" }\n')
    with pytest.raises(ConfigError, match=r"unknown action 'nope\.nothing'"):
        load_schedules(load_config(tmp_path), Registry([]), resolve=False)


def test_a_pyproject_schedule_may_not_take_an_action_schedules_name(tmp_path):
    declared = action("reports.tick", every="1m", schedule_data={"kind": "t"})(report)
    write(
        tmp_path,
        '[tool.switchyard.schedules]\n"reports.tick" = { action = "reports.build", every = "1s",'
        ' data = { kind = "a" } }\n',
    )
    with pytest.raises(ConfigError, match=r"the action reports\.tick declares a schedule"):
        load_schedules(load_config(tmp_path), registry_of(declared))


def test_a_manifest_names_the_scheduled_actions(tmp_path):
    declared = action("reports.tick", every="1m", schedule_data={"kind": "t"})(report)
    registry = registry_of(declared)
    manifest = write_manifest(tmp_path / "manifest.json", registry)
    found = load_schedules(Config(), registry, manifest=manifest)
    assert [s.name for s in found] == ["reports.tick"]


SCHEDULED_PLUGIN = """
from pydantic import BaseModel
from switchyard import action


class In(BaseModel):
    kind: str


class Out(BaseModel):
    ok: bool = True


@action("sched.nightly", schedule="30 2 * * *", timezone="Europe/Berlin",
        schedule_data={"kind": "daily"}, catchup="all within 6h")
def nightly(data: In) -> Out:
    return Out()
"""


def test_actions_show_and_the_manifest_carry_the_schedule(plugins, tmp_path, monkeypatch, capsys):
    from switchyard._cli import main

    plugins.add(
        "sytest-sched",
        actions={"sched.nightly": "sytest_sched:nightly"},
        modules={"sytest_sched": SCHEDULED_PLUGIN},
    )
    monkeypatch.chdir(tmp_path)
    assert main(["actions", "show", "sched.nightly"]) == 0
    out = capsys.readouterr().out
    assert "  schedule         30 2 * * *\n" in out
    assert "  timezone         Europe/Berlin\n" in out
    assert '  schedule_data    {"kind":"daily"}\n' in out
    assert "  catchup          all within 6h\n" in out
    assert main(["actions", "show", "sched.nightly", "--json"]) == 0
    policy = json.loads(capsys.readouterr().out)["policy"]
    assert (policy["schedule"], policy["every"], policy["overlap"]) == ("30 2 * * *", None, "skip")
    registry = Registry([Registry.from_entry_points().info("sched.nightly")])
    manifest = write_manifest(tmp_path / "m.json", registry)
    (found,) = load_schedules(Config(), Registry.from_manifest(manifest), manifest=manifest)
    assert (found.name, found.when, found.source) == (
        "sched.nightly", "cron 30 2 * * * (Europe/Berlin)", "action sched.nightly",
    )  # fmt: skip
    assert json.loads(found.data) == {"kind": "daily"}
