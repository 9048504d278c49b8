"""Schedules fired by real worker services on real Redis (db 8): two supervisors and a kill -9
of the one holding the lease, catch-up after downtime per policy, bad schedules at boot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

WORKER = Path(sys.executable).parent / "switchyard-worker"


def worker_env(plugins: Path, url: str) -> dict[str, str]:
    """As the worker fixtures start one: the plugin folder on PYTHONPATH, Redis ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env["SWITCHYARD_REDIS_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    return env


PLUGIN = """
from pydantic import BaseModel
from switchyard import action


class Tick(BaseModel):
    name: str = "tick"


class Done(BaseModel):
    ok: bool = True


@action("stest.tick", every="1s", overlap="allow", catchup="all within 1m")
def tick(data: Tick) -> Done:
    return Done()


@action("stest.record")
def record(data: Tick) -> Done:
    return Done()
"""


@pytest.fixture(scope="session")
def schedule_plugin(tmp_path_factory) -> Path:
    """A distribution ``stest-plugin``: ``stest.tick`` declares a schedule (every second)."""
    root = tmp_path_factory.mktemp("stest-plugin")
    (root / "stest_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = root / "stest_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stest-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[switchyard.actions]\nstest.tick = stest_plugin:tick\nstest.record = stest_plugin:record\n"
    )
    return root


def ticks(conn, name: str) -> dict[int, str]:
    """Every tick of schedule ``name`` that fired (unix seconds) -> its job's id."""
    prefix = f"switchyard:key:schedule:{name}:"
    found = {}
    for key in conn.scan_iter(match=prefix + "*", count=1000):
        stamp = key.decode().removeprefix(prefix)
        when = int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp())
        found[when] = conn.get(key).decode()
    return found


def fired(conn, name: str) -> int:
    return int(conn.hget(f"switchyard:schedule:{name}", "fired") or 0)


def wait_until(predicate, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(message())


def test_two_supervisors_fire_each_tick_once_across_a_kill_9_of_the_leader(
    start_worker, schedule_plugin, redis_db
):
    args = ("--min", "1", "--max", "1", "--schedule-lease", "1")
    workers = [start_worker(*args, plugins=schedule_plugin) for _ in range(2)]
    wait_until(lambda: fired(redis_db, "stest.tick") >= 3, 30,
               lambda: workers[0].text() + workers[1].text())  # fmt: skip
    token = redis_db.get("switchyard:scheduler:lease").decode()
    (leader,) = [w for w in workers if f"leading (token {token})" in w.text()]
    (other,) = [w for w in workers if w is not leader]
    killed_at = time.time()
    os.kill(leader.pid, signal.SIGKILL)
    leader.proc.wait(10)
    wait_until(lambda: "scheduler: leading" in other.text(), 10, other.text)
    before = fired(redis_db, "stest.tick")
    wait_until(lambda: fired(redis_db, "stest.tick") >= before + 4, 20, other.text)
    assert other.stop() == 0

    fired_ticks = ticks(redis_db, "stest.tick")
    first, last = min(fired_ticks), max(fired_ticks)
    assert first < killed_at < last
    assert sorted(fired_ticks) == list(range(first, last + 1)), "a tick was never fired"
    assert fired(redis_db, "stest.tick") == len(fired_ticks), "a tick was fired twice"
    assert len(set(fired_ticks.values())) == len(fired_ticks)  # one job each
    for job in fired_ticks.values():
        assert redis_db.hget(f"rq:job:{job}", "data") is not None
    # the survivor took over with the next fencing token
    assert f"leading (token {int(token) + 1})" in other.text()


PROJECT = """\
[tool.switchyard]

[tool.switchyard.schedules]
none = { action = "stest.record", every = "1s", overlap = "allow", catchup = "none" }
latest = { action = "stest.record", every = "1s", overlap = "allow", catchup = "latest" }
all = { action = "stest.record", every = "1s", overlap = "allow", catchup = "all within 1m" }
"""


def test_catch_up_after_downtime_follows_each_policy(
    start_worker, schedule_plugin, redis_db, tmp_path
):
    (tmp_path / "pyproject.toml").write_text(PROJECT)
    names = ("none", "latest", "all")
    args = ("--min", "1", "--max", "1", "--schedule-lease", "1", "--no-metrics")
    first = start_worker(*args, plugins=schedule_plugin)
    wait_until(lambda: min(fired(redis_db, n) for n in names) >= 2, 30, first.text)
    assert first.stop() == 0
    stopped = {n: max(ticks(redis_db, n)) for n in names}
    time.sleep(6)  # downtime: 6 s, three times the grace (twice the lease)
    second = start_worker(*args, plugins=schedule_plugin)
    wait_until(lambda: all(max(ticks(redis_db, n)) >= stopped[n] + 8 for n in names), 30,
               second.text)  # fmt: skip
    assert second.stop() == 0

    missing = {}
    for name in names:
        fired_ticks = sorted(ticks(redis_db, name))
        span = range(fired_ticks[0], fired_ticks[-1] + 1)
        missing[name] = [t for t in span if t not in fired_ticks]
        state = redis_db.hgetall(f"switchyard:schedule:{name}")
        assert int(state.get(b"missed", 0)) == len(missing[name]), (name, state)
        assert int(state[b"fired"]) == len(fired_ticks)
    assert missing["all"] == []
    assert len(missing["none"]) >= 3, missing
    # latest: the same gap but for its last tick, which fired on restart
    assert missing["latest"] == missing["none"][:-1]
    assert "scheduler: none missed" in second.text()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('bad = { action = "stest.record", cron = "61 * * * *" }',
         "[tool.switchyard.schedules] bad: cron '61 * * * *': minute field: 61 is out of range"),
        ('bad = { action = "stest.record", cron = "0 3 * * *", timezone = "Atlantis/Capital" }',
         "bad: timezone must be an IANA time zone name"),
        ('bad = { action = "stest.recrod", every = "1s" }',
         "bad: unknown action 'stest.recrod' (did you mean 'stest.record'?)"),
        ('bad = { action = "stest.record", every = "-1s" }', "bad: every must be an interval > 0"),
        ('bad = { action = "stest.record", every = "1s", cron = "* * * * *" }',
         "bad: give either cron"),
    ],
)  # fmt: skip
def test_a_bad_schedule_stops_the_worker_at_boot_in_one_line(
    entry, message, schedule_plugin, redis_db, redis_url, tmp_path
):
    (tmp_path / "pyproject.toml").write_text(f"[tool.switchyard.schedules]\n{entry}\n")
    proc = subprocess.run(
        [str(WORKER), "--min", "1", "--max", "1"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=worker_env(schedule_plugin, redis_url),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"switchyard-worker: error: {tmp_path / 'pyproject.toml'}:2: ")
    assert message in proc.stderr
    assert redis_db.dbsize() == 0  # nothing enqueued, nothing registered


def test_data_that_does_not_fit_is_one_error_line_and_nothing_fires(
    start_worker, schedule_plugin, redis_db, tmp_path
):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.switchyard.schedules]\nbad = { action = "stest.record", every = "1s",'
        " data = { name = 5 } }\n"
    )
    worker = start_worker("--min", "1", "--max", "1", plugins=schedule_plugin)
    worker.wait_log("no schedule fires from this worker")
    line = next(x for x in worker.text().splitlines() if "no schedule fires" in x)
    assert "bad: invalid input for stest.record: name: Input should be a valid string" in line
    time.sleep(1.5)
    assert not redis_db.keys("switchyard:key:schedule:*")
    assert worker.stop() == 0


def test_no_schedules_runs_no_scheduler(start_worker, schedule_plugin, redis_db):
    worker = start_worker("--min", "1", "--max", "1", "--no-schedules", plugins=schedule_plugin)
    worker.wait_ready(1, redis_db)
    time.sleep(1.5)
    assert not redis_db.exists("switchyard:scheduler:lease")
    assert "schedules:" not in worker.text()
    assert worker.stop() == 0
