"""The scheduler against real Redis (db 7): the lease and its fencing token, exactly-once ticks
across a change of holder, overlap, pause, trigger, catch-up; and `switchyard schedules` in all
its forms."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
from switchyard import Schedule
from switchyard_rq_testkit import URL  # type: ignore[import-not-found]

import switchyard_rq
from switchyard_rq._wire import keys


def every_second(name: str = "nap", **options) -> Schedule:
    """No consumer runs the jobs here: they stay queued, so overlap is 'allow' unless given."""
    options.setdefault("overlap", "allow")
    return Schedule(name, "demo.nap", every="1s", data={"seconds": 0}, **options)


def scheduler(conn, reg, *schedules: Schedule, lease: float = 5.0) -> switchyard_rq.Scheduler:
    return switchyard_rq.Scheduler(list(schedules), registry=reg, connection=conn, lease=lease)


def fired_ticks(conn, name: str) -> dict[str, str]:
    """tick -> job id, from the firings' idempotency keys."""
    prefix = keys.idempotency(keys.schedule_tick_key(name, ""))
    found = {}
    for key in conn.scan_iter(match=prefix + "*"):
        found[key.decode().removeprefix(prefix)] = conn.get(key).decode()
    return found


def state(conn, name: str) -> switchyard_rq.ScheduleState:
    return switchyard_rq.schedule_states([name], connection=conn)[name]


def next_whole(now: float) -> float:
    return float(math.floor(now) + 1)


def test_one_holder_fires_each_tick_once(conn, reg):
    a = scheduler(conn, reg, every_second())
    b = scheduler(conn, reg, every_second())
    start = time.time()
    a.step(start)
    b.step(start)
    assert a.token == "1"
    assert b.token is None  # the lease is A's
    tick = next_whole(start)
    for moment in (tick + 0.01, tick + 0.02, tick + 1.01):
        a.step(moment)
        b.step(moment)
    ticks = fired_ticks(conn, "nap")
    assert len(ticks) == 2
    assert len(set(ticks.values())) == 2
    assert a.outcomes == {"fired": 2}
    assert b.outcomes == {}
    job = switchyard_rq.JobHandle(state(conn, "nap").job or "", connection=conn)
    assert job.status == "queued"
    assert job.action == "demo.nap"
    assert state(conn, "nap").fired == 2


def test_a_stale_holder_fires_nothing(conn, reg):
    """The fencing token: A stalls past its lease, B takes over; A still believes it leads, and
    its firing is refused by the script, not by A's good judgement."""
    a = scheduler(conn, reg, every_second())
    start = time.time()
    a.step(start)
    conn.delete(keys.SCHEDULER_LEASE)  # A's lease expired while it was stalled
    b = scheduler(conn, reg, every_second())
    b.step(start)
    assert (a.token, b.token) == ("1", "2")
    a._renew_at = math.inf  # A does not notice: it skips its renewal
    tick = next_whole(start)
    a.step(tick + 0.01)
    assert a.outcomes == {"stale": 1}
    assert a.token is None  # it knows now
    assert fired_ticks(conn, "nap") == {}
    b.step(tick + 0.02)
    assert b.outcomes == {"fired": 1}
    assert list(fired_ticks(conn, "nap")) == [time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                            time.gmtime(tick))]  # fmt: skip


def test_a_new_holder_carries_on_where_the_last_one_stopped(conn, reg):
    a = scheduler(conn, reg, every_second(), lease=1.0)
    start = time.time()
    a.step(start)
    tick = next_whole(start)
    a.step(tick + 0.01)
    conn.delete(keys.SCHEDULER_LEASE)  # A died
    b = scheduler(conn, reg, every_second(), lease=1.0)
    b.step(tick + 0.5)  # takes over: tick was fired, nothing to do
    b.step(tick + 2.5)  # tick+1 and tick+2 (within the grace of 2 s): both fire now
    assert a.outcomes == {"fired": 1}
    assert b.outcomes == {"fired": 2}
    assert len(fired_ticks(conn, "nap")) == 3
    assert state(conn, "nap").last == tick + 2


def test_a_release_lets_another_take_over_at_once(conn, reg):
    a = scheduler(conn, reg, every_second())
    b = scheduler(conn, reg, every_second())
    a.step()
    b.step()
    assert b.token is None
    a.release()
    b._renew_at = 0.0
    b.step()
    assert b.token == "2"


def test_overlap_skip_queue_allow(conn, reg):
    schedules = [every_second(name, overlap=name) for name in ("skip", "queue", "allow")]
    sched = scheduler(conn, reg, *schedules)
    start = time.time()
    sched.step(start)
    tick = next_whole(start)
    sched.step(tick + 0.01)  # each fires; no consumer runs the jobs: they stay queued
    sched.step(tick + 1.01)
    assert len(fired_ticks(conn, "skip")) == 1
    assert state(conn, "skip").skipped == 1
    assert len(fired_ticks(conn, "queue")) == 1
    assert state(conn, "queue").pending == tick + 1
    assert len(fired_ticks(conn, "allow")) == 2
    sched.step(tick + 2.01)  # a newer held tick replaces the held one
    assert state(conn, "queue").pending == tick + 2
    # the first firing of "queue" ends: the held tick fires at the next pass
    first = state(conn, "queue").job
    conn.hset(keys.job(first or ""), "status", "finished")
    sched.step(tick + 2.5)
    queued = state(conn, "queue")
    assert queued.pending is None
    assert queued.tick == tick + 2
    assert len(fired_ticks(conn, "queue")) == 2


def test_pause_resume(conn, reg):
    sched = scheduler(conn, reg, every_second())
    start = time.time()
    sched.step(start)
    assert switchyard_rq.pause_schedule("nap", connection=conn) is True
    assert switchyard_rq.pause_schedule("nap", connection=conn) is False
    tick = next_whole(start)
    sched.step(tick + 0.01)
    assert fired_ticks(conn, "nap") == {}
    assert state(conn, "nap").paused
    assert state(conn, "nap").skipped == 1
    assert switchyard_rq.pause_schedule("nap", False, connection=conn) is True
    sched.step(tick + 1.01)
    assert len(fired_ticks(conn, "nap")) == 1
    assert state(conn, "nap").last == tick + 1


def test_trigger_fires_now_and_counts_for_overlap(conn, reg):
    schedule = every_second(overlap="skip")
    handle = switchyard_rq.trigger_schedule(schedule, registry=reg, connection=conn)
    assert handle.status == "queued"
    assert state(conn, "nap").job == handle.id
    (key,) = fired_ticks(conn, "nap")
    assert key.startswith("trigger-")
    sched = scheduler(conn, reg, schedule)
    start = time.time()
    sched.step(start)
    sched.step(next_whole(start) + 0.01)
    assert sched.outcomes == {"skipped": 1}  # the triggered job still waits: overlap skip


@pytest.mark.parametrize(
    ("catchup", "fired", "missed"),
    [("none", 2, 98), ("latest", 3, 97), ("all within 1h", 100, 0), ("all within 30s", 30, 70)],
)
def test_catch_up_after_downtime(conn, reg, catchup, fired, missed):
    """The last holder stopped 100 s ago; the lease lasts 1 s, so 2 s late is still on time."""
    schedule = every_second(catchup=catchup)
    now = math.floor(time.time()) + 0.5
    conn.hset(keys.schedule("nap"), "last", repr(now - 100.5))
    sched = scheduler(conn, reg, schedule, lease=1.0)
    sched.step(now)
    assert len(fired_ticks(conn, "nap")) == fired
    assert (state(conn, "nap").fired, state(conn, "nap").missed) == (fired, missed)
    assert state(conn, "nap").last == (now if missed else now - 0.5)


def test_data_that_no_longer_fits_is_logged_not_fired(conn, reg, caplog):
    bad = Schedule("bad", "demo.nap", every="1s", data={"seconds": "long"})
    sched = scheduler(conn, reg, bad)
    start = time.time()
    sched.step(start)
    sched.step(next_whole(start) + 0.01)
    assert sched.outcomes == {"error": 1}
    assert "bad: cannot fire: invalid input for demo.nap" in caplog.text
    assert fired_ticks(conn, "bad") == {}


def test_run_stops_and_gives_the_lease_up(conn, reg):
    sched = scheduler(conn, reg, every_second())
    stop = threading.Event()
    thread = threading.Thread(target=sched.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while not conn.exists(keys.SCHEDULER_LEASE) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert conn.get(keys.SCHEDULER_LEASE) == b"1"
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert not conn.exists(keys.SCHEDULER_LEASE)


# -- switchyard schedules ------------------------------------------------------------------------

PROJECT = """\
[tool.switchyard]
default-queue = "main"

[tool.switchyard.schedules]
slugs = { action = "text.slugify", every = "1m", data = { text = "Hello World" } }
nightly = { action = "text.slugify", cron = "0 3 * * *", timezone = "Europe/Berlin", data = { text = "n" } }
"""  # noqa: E501


@pytest.fixture
def project(tmp_path, monkeypatch, conn):
    from switchyard import Registry

    if "text.slugify" not in Registry.from_entry_points():
        pytest.skip("acme-text is not installed")
    (tmp_path / "pyproject.toml").write_text(PROJECT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run_cli(capsys, monkeypatch):
    import runpy
    import sys

    monkeypatch.setenv("SWITCHYARD_REDIS_URL", URL)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["switchyard", *args])
        with pytest.raises(SystemExit) as exited:
            runpy.run_module("switchyard", run_name="__main__", alter_sys=True)
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    return run


@pytest.mark.parametrize(
    "args",
    [
        ["schedules"],
        ["schedules", "list"],
        ["schedules", "--redis-url", URL],
        ["schedules", "list", "--redis-url", URL],
        ["schedules", "--redis-url", URL, "list"],
    ],
)
def test_schedules_lists_next_runs_and_last_firings(project, run_cli, args):
    code, out, err = run_cli(*args)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "nightly  text.slugify  cron 0 3 * * * (Europe/Berlin)  [active]"
    assert lines[1].startswith("  next   ")
    assert lines[1].endswith(")")
    assert " 03:00:00 CE" in lines[1]  # CET or CEST: Berlin's wall clock
    assert lines[2] == "  last   never"
    assert lines[4] == "slugs  text.slugify  every 1min  [active]"
    assert "fired 0, skipped 0, missed 0; overlap skip, catch-up latest" in lines[7]


@pytest.mark.parametrize(
    "args",
    [["schedules", "--json"], ["schedules", "list", "--json"], ["schedules", "--json", "list"]],
)
def test_schedules_json(project, run_cli, conn, args):
    code, _, _ = run_cli("schedules", "trigger", "slugs")
    assert code == 0
    code, out, err = run_cli(*args)
    assert (code, err) == (0, "")
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {"nightly", "slugs"}
    slugs = rows["slugs"]
    assert (slugs["action"], slugs["every"], slugs["data"]) == (
        "text.slugify",
        60,
        {"text": "Hello World"},
    )
    assert slugs["next"] > time.time()
    assert slugs["next"] % 60 == 0
    assert slugs["last_job"]
    assert slugs["last_fired_at"] <= time.time()
    assert rows["nightly"]["last_job"] is None
    assert slugs["source"].endswith("pyproject.toml:5")


@pytest.mark.parametrize("where", ["before", "after"])
def test_pause_and_resume(project, run_cli, conn, where):
    def form(verb: str, *extra: str) -> list[str]:
        return (
            ["schedules", *extra, verb, "slugs"]
            if where == "before"
            else ["schedules", verb, "slugs", *extra]
        )

    assert run_cli(*form("pause")) == (0, "slugs: paused\n", "")
    assert run_cli(*form("pause")) == (0, "slugs: already paused\n", "")
    _, out, _ = run_cli("schedules")
    assert "slugs  text.slugify  every 1min  [paused]" in out
    assert "  next   (paused)" in out
    _, out, _ = run_cli(*form("resume", "--json"))
    assert json.loads(out) == {"name": "slugs", "result": "resumed", "paused": False}
    assert run_cli(*form("resume", "--redis-url", URL)) == (0, "slugs: not paused\n", "")
    assert (
        run_cli(*form("pause", "--json"))[1]
        == '{"name": "slugs", "result": "paused", "paused": true}\n'
    )


def test_trigger_prints_the_job_and_waits_for_its_result(project, run_cli, conn):
    code, out, err = run_cli("schedules", "trigger", "slugs")
    assert (code, err) == (0, "")
    job = switchyard_rq.JobHandle(out.strip(), connection=conn)
    assert job.action == "text.slugify"
    assert job.status == "queued"
    code, out, _ = run_cli("schedules", "--json", "trigger", "nightly")
    assert json.loads(out)["name"] == "nightly"
    from switchyard import Registry

    stop = threading.Event()
    worker = switchyard_rq.Consumer(conn, ["main"], registry=Registry.from_entry_points())
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop, "idle_timeout": 0.1})
    thread.start()
    try:
        code, out, err = run_cli("schedules", "trigger", "slugs", "--wait", "20")
    finally:
        stop.set()
        thread.join()
        worker.close()
    assert (code, out, err) == (0, '{"slug":"hello-world"}\n', "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedules", "pause", "slgus"], "error: unknown schedule 'slgus'; did you mean 'slugs'? "
         "(schedules: nightly, slugs)"),
        (["schedules", "resume", "nope"],
         "error: unknown schedule 'nope' (schedules: nightly, slugs)"),
        (["schedules", "trigger", "nope"], "error: unknown schedule 'nope'"),
        (["schedules", "--redis-url", "http://x", "list"], "--redis-url"),
        (["schedules", "trigger", "slugs", "--wait", "-1"],
         "argument --wait: must be a number of seconds from 0 to 86400, not '-1'"),
        (["schedules", "pause"], "the following arguments are required: NAME"),
        (["schedules", "frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)  # fmt: skip
def test_bad_schedules_commands_say_one_line(project, run_cli, args, message):
    code, out, err = run_cli(*args)
    assert code != 0
    assert out == ""
    assert message in err
    assert "Traceback" not in err
    assert fired_ticks(conn := switchyard_rq.get_connection(URL), "slugs") == {}
    assert not conn.keys("rq:job:*")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('bad = { action = "text.slugify", cron = "61 * * * *", data = { text = "x" } }',
         "[tool.switchyard.schedules] bad: cron '61 * * * *': minute field: 61 is out of range"),
        ('bad = { action = "text.slugify", cron = "0 3 * * *", timezone = "Moon/Base" }',
         "bad: timezone must be an IANA time zone name"),
        ('bad = { action = "text.slugfiy", every = "1m", data = { text = "x" } }',
         "bad: unknown action 'text.slugfiy' (did you mean 'text.slugify'?)"),
        ('bad = { action = "text.slugify", every = "5 parsecs" }',
         "bad: every must be an interval"),
        ('bad = { action = "text.slugify", every = "1m", data = { text = "" } }',
         "bad: invalid input for text.slugify: text: String should have at least 1 character"),
        ('bad = { action = "text.slugify", every = "1m", cron = "* * * * *" }', "bad: give either"),
    ],
)  # fmt: skip
def test_a_bad_schedule_fails_every_command_with_one_line(project, run_cli, entry, message):
    (project / "pyproject.toml").write_text(PROJECT + entry + "\n")
    for args in (["schedules"], ["schedules", "trigger", "slugs"], ["schedules", "pause", "slugs"]):
        code, out, err = run_cli(*args)
        assert (code, out) == (1, ""), err
        assert err.count("\n") == 1, err
        assert message in err
        assert f"pyproject.toml:{PROJECT.count(chr(10)) + 1}" in err
    conn = switchyard_rq.get_connection(URL)
    assert not conn.keys("rq:job:*")
    assert not conn.keys("switchyard:schedule:*")
