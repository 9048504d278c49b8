"""Flow control and priorities on a real Redis, with several consumers at once: concurrency
limits (per action and per key), rates, circuit breakers, leases of dead consumers, priorities."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import switchyard_rq
from switchyard_rq._consumer.registration import LEASE_SECONDS

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from switchyard_rq_flowkit import ORDER, REG, RUNS, SPANS, reset  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh() -> None:
    reset()


@contextlib.contextmanager
def serving(conn: redis.Redis, count: int, *, concurrency: int = 16) -> Iterator[None]:
    """``count`` consumers of the default queue, each in a thread, until the block ends."""
    stop = threading.Event()
    running = [
        switchyard_rq.Consumer(conn, ["default"], registry=REG, concurrency=concurrency,
                               log_jobs=False)
        for _ in range(count)
    ]  # fmt: skip
    threads = [
        threading.Thread(target=c.run, kwargs={"stop": stop, "idle_timeout": 0.1}) for c in running
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for consumer in running:
            consumer.close()


@pytest.mark.parametrize("seconds", [0.0, 0.01])
def test_every_job_runs_once_with_many_at_once(conn, seconds):
    """Jobs that end together free their slots before their outcomes are stored: the next take
    must not give them back as if never started (they would run twice)."""
    handles = switchyard_rq.schedule_many(
        [("flow.counted", {"n": n, "seconds": seconds}) for n in range(400)], registry=REG
    )
    with switchyard_rq.Consumer(conn, ["default"], registry=REG, concurrency=16,
                                log_jobs=False) as consumer:  # fmt: skip
        assert consumer.run(max_jobs=400, idle_timeout=0.1) == 400
    assert [h.result(timeout=5).n for h in handles] == list(range(400))
    assert dict.fromkeys(range(400), 1) == RUNS


def test_a_concurrency_limit_holds_across_consumers_and_nothing_waits_for_nothing(conn):
    handles = switchyard_rq.schedule_many(
        [("flow.limited", {"n": n, "seconds": 0.05}) for n in range(30)], registry=REG
    )
    with serving(conn, 3):
        results = [h.result(timeout=30) for h in handles]
    assert SPANS.peak() == 2  # never more than the limit, and the limit was used
    assert [r.attempt for r in results] == [1] * 30  # waiting was not an attempt
    assert conn.zcard("switchyard:flow:c:flow.limited") == 0  # every lease released
    assert not conn.exists("switchyard:flow:c:flow.limited:parked")


def test_a_limit_per_key_lets_other_keys_run(conn):
    calls = [("flow.per_tenant", {"n": n, "tenant": t, "seconds": 0.05})
             for n in range(6) for t in ("a", "b", "c")]  # fmt: skip
    handles = switchyard_rq.schedule_many(calls, registry=REG)
    with serving(conn, 2):
        for handle in handles:
            handle.result(timeout=30)
    assert [SPANS.peak(t) for t in ("a", "b", "c")] == [1, 1, 1]
    assert SPANS.peak() == 3  # one of each tenant at once


def test_a_rate_spaces_starts_defers_without_attempts_and_never_fails(conn):
    handles = switchyard_rq.schedule_many(
        [("flow.rated", {"n": n}) for n in range(12)], registry=REG
    )
    with serving(conn, 3):
        results = [h.result(timeout=30) for h in handles]
    assert [r.attempt for r in results] == [1] * 12
    starts = SPANS.starts()
    # 20/s with bursts of 2: after the first two, one start every 50 ms, whoever runs it
    assert starts[-1] - starts[0] >= (12 - 2) * 0.05 - 0.02
    assert {h.status for h in handles} == {"finished"}


def test_a_breaker_opens_defers_its_jobs_then_a_probe_closes_it(conn):
    failing = switchyard_rq.schedule_many(
        [("flow.guarded", {"n": n, "fail": True}) for n in range(3)], registry=REG
    )
    with serving(conn, 1, concurrency=1):
        for handle in failing:
            with pytest.raises(switchyard_rq.JobFailedError, match="the service is down"):
                handle.result(timeout=30)
        assert conn.hget("switchyard:flow:b:flow.guarded", "state") == b"open"
        waiting = switchyard_rq.schedule_many(
            [("flow.guarded", {"n": n}) for n in range(5)], registry=REG
        )
        # while open, its jobs wait (deferred), they neither run nor fail
        deadline = time.monotonic() + 10
        while conn.zcard("switchyard:flow:b:flow.guarded:parked") < 1:
            assert time.monotonic() < deadline, "no job was deferred by the open breaker"
            time.sleep(0.01)
        assert "deferred" in {h.status for h in waiting}
        results = [h.result(timeout=30) for h in waiting]  # the cooldown passes, a probe runs
    assert [r.n for r in sorted(results, key=lambda r: r.n)] == [0, 1, 2, 3, 4]
    assert conn.hget("switchyard:flow:b:flow.guarded", "state") is None  # closed
    assert conn.hget("switchyard:flow:b:flow.guarded", "opened") == b"1"
    assert SPANS.peak("guarded") >= 1


def test_a_failed_probe_opens_the_breaker_again(conn):
    switchyard_rq.schedule_many(
        [("flow.guarded", {"n": n, "fail": True}) for n in range(3)], registry=REG
    )
    with serving(conn, 1, concurrency=1):
        deadline = time.monotonic() + 10
        while conn.hget("switchyard:flow:b:flow.guarded", "state") != b"open":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        probe = switchyard_rq.schedule_action("flow.guarded", {"fail": True}, registry=REG)
        with pytest.raises(switchyard_rq.JobFailedError):
            probe.result(timeout=30)
    assert conn.hget("switchyard:flow:b:flow.guarded", "opened") == b"2"
    assert conn.hget("switchyard:flow:b:flow.guarded", "state") == b"open"


def test_a_deferred_job_can_be_canceled(conn):
    conn.zadd("switchyard:flow:c:flow.limited", {"someone:e-1": time.time() + 1e6,
                                                  "someone:e-2": time.time() + 1e6})  # fmt: skip
    handle = switchyard_rq.schedule_action("flow.limited", {"n": 1}, registry=REG)
    with serving(conn, 1):
        deadline = time.monotonic() + 10
        while handle.status != "deferred":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert handle.cancel()
    assert handle.status == "canceled"
    assert conn.zcard("switchyard:flow:c:flow.limited:parked") == 0


def test_priorities_come_first_and_low_ones_are_not_starved(conn):
    calls = [switchyard_rq.Call("flow.ordered", {"n": 100 + n}, priority="low") for n in range(10)]
    calls += [switchyard_rq.Call("flow.ordered", {"n": n}) for n in range(10)]
    calls += [switchyard_rq.Call("flow.ordered", {"n": 200 + n}, priority="high")
              for n in range(30)]  # fmt: skip
    switchyard_rq.schedule_many(calls, registry=REG)
    assert switchyard_rq.queue_stats(conn, ["default"])["default"].depth == 50
    with switchyard_rq.Consumer(conn, ["default"], registry=REG, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=50, idle_timeout=0.1) == 50
    assert ORDER[0] >= 200  # a high one first
    first = ORDER[:14]
    # 4:2:1 while all three wait: low ones run long before the high ones are done
    assert sum(1 for n in first if n >= 200) == 8
    assert sum(1 for n in first if n < 100) == 4
    assert sum(1 for n in first if 100 <= n < 200) == 2
    for level in (range(100), range(100, 200), range(200, 300)):  # each in its own order
        seen = [n for n in ORDER if n in level]
        assert seen == sorted(seen)


def test_a_bad_priority_is_refused_before_redis(conn):
    with pytest.raises(ValueError, match="priority must be 'high', 'normal' or 'low'"):
        switchyard_rq.schedule_action("flow.ordered", {}, priority="urgent", registry=REG)
    assert conn.dbsize() == 0


def test_the_lease_of_a_killed_consumer_lapses_within_seconds(conn):
    """No supervisor recovers the dead consumer's job: its lease lapses on its own, and the job
    waiting for the slot runs."""
    held = switchyard_rq.schedule_action("flow.limited", {"n": 1, "seconds": 60}, registry=REG)
    held2 = switchyard_rq.schedule_action("flow.limited", {"n": 2, "seconds": 60}, registry=REG)
    child = subprocess.Popen(
        [sys.executable, str(HERE / "flow_child.py"), os.environ["SWITCHYARD_REDIS_URL"]],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while conn.zcard("switchyard:flow:c:flow.limited") < 2:
            assert time.monotonic() < deadline, "the child never took both jobs"
            time.sleep(0.02)
        child.kill()
        child.wait(10)
        killed = time.monotonic()
        waiting = switchyard_rq.schedule_action("flow.limited", {"n": 3}, registry=REG)
        with serving(conn, 1):
            assert waiting.result(timeout=30).n == 3
        lapsed = time.monotonic() - killed
    finally:
        if child.poll() is None:
            child.kill()
        if child.stdout is not None:
            child.stdout.close()
    assert lapsed < LEASE_SECONDS + 5  # the lease's life, plus a sweep, with a margin
    assert (held.status, held2.status) == ("started", "started")  # recovery's business


def test_recovering_a_dead_consumer_releases_its_leases_at_once(conn):
    switchyard_rq.schedule_action("flow.limited", {"n": 1, "seconds": 60}, registry=REG)
    switchyard_rq.schedule_action("flow.limited", {"n": 2, "seconds": 60}, registry=REG)
    child = subprocess.Popen(
        [sys.executable, str(HERE / "flow_child.py"), os.environ["SWITCHYARD_REDIS_URL"]],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while conn.zcard("switchyard:flow:c:flow.limited") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait(10)
    recovered = switchyard_rq.recover_orphans(conn, alive_names=[])
    assert len(recovered) == 2
    assert conn.zcard("switchyard:flow:c:flow.limited") == 0


def test_limits_and_breakers_show_in_stats_and_top(conn, monkeypatch, capsys):
    import runpy

    from switchyard_rq._ops.stats import read_snapshot
    from switchyard_rq._ops.top import build_view, render

    switchyard_rq.schedule_many(
        [("flow.guarded", {"n": n, "fail": True}) for n in range(3)], registry=REG
    )
    with serving(conn, 1, concurrency=1):
        deadline = time.monotonic() + 10
        while conn.hget("switchyard:flow:b:flow.guarded", "state") != b"open":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    switchyard_rq.schedule_action("flow.limited", {"n": 1}, registry=REG)
    conn.zadd("switchyard:flow:c:flow.limited", {"x:1": time.time() + 60, "x:2": time.time() + 60})
    conn.hset("switchyard:flow:limits:default", "switchyard:flow:c:flow.limited", 2)
    states = {s.name: s for s in switchyard_rq.flow_stats(conn)}
    assert states["flow.guarded"].kind == "breaker"
    assert states["flow.guarded"].state == "open"
    assert states["flow.guarded"].opened == 1
    assert 0 <= (states["flow.guarded"].probe_in or 0) <= 1
    assert (states["flow.limited"].in_use, states["flow.limited"].limit) == (2, 2)

    monkeypatch.setenv("SWITCHYARD_REDIS_URL", os.environ["SWITCHYARD_REDIS_URL"])
    monkeypatch.setattr(sys, "argv", ["switchyard", "stats", "--json", "--window", "0.05"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("switchyard", run_name="__main__", alter_sys=True)
    assert exited.value.code in (0, None)
    flow = {f["name"]: f for f in json.loads(capsys.readouterr().out)["flow"]}
    assert flow["flow.guarded"]["state"] == "open"
    assert flow["flow.limited"]["in_use"] == 2

    snap = read_snapshot(conn)
    lines = "\n".join(render(build_view(snap, snap, "redis"), 200, 100))
    assert "flow.guarded" in lines
    assert "2/2" in lines
