"""Long jobs through real worker processes: cancelling queued and running jobs (sync that
looks, async, sync that never looks), progress read from another process, the event stream
followed from another process, and `switchyard jobs cancel`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import switchyard
import switchyard_rq
from switchyard_worker_longkit import (  # type: ignore[import-not-found]
    private_redis,
    wait_until,
    write_plugin,
)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """This module's own redis-server (instead of the machine's, shared and locked)."""
    with private_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def lj_dir(tmp_path_factory):
    return write_plugin(tmp_path_factory.mktemp("ljtest-plugin"))


@pytest.fixture
def lj(redis_db, lj_dir, monkeypatch):
    """The producer's registry, with ljtest-plugin installed (from metadata)."""
    monkeypatch.syspath_prepend(str(lj_dir))
    return switchyard.Registry.from_entry_points()


def cli(*args: str, url: str, plugins) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHYARD_REDIS_URL": url, "PYTHONPATH": str(plugins)}
    return subprocess.run(
        [sys.executable, "-m", "switchyard", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_queued_job_cancelled_never_runs(start_worker, lj, lj_dir, redis_db, redis_url):
    later = switchyard_rq.schedule_action(
        "lj.asleep", {"id": "q", "seconds": 0}, delay=60, registry=lj
    )
    queued = switchyard_rq.schedule_action("lj.asleep", {"id": "q2", "seconds": 0}, registry=lj)
    assert later.cancel() is True
    done = cli("jobs", "cancel", queued.id, url=redis_url, plugins=lj_dir)
    assert done.returncode == 0, done.stderr
    assert f"canceled {queued.id} (it was queued)" in done.stdout
    assert redis_db.llen("rq:queue:default") == 0
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    follow = switchyard_rq.schedule_action("lj.asleep", {"id": "f", "seconds": 0}, registry=lj)
    assert follow.result(timeout=20).done == 1
    for handle in (later, queued):
        assert handle.status == "canceled"
        with pytest.raises(switchyard_rq.JobFailedError, match="canceled before it ran"):
            handle.result(timeout=0)
    assert not redis_db.exists("lj:started:q")
    assert not redis_db.exists("lj:started:q2")
    again = cli("jobs", "cancel", queued.id, url=redis_url, plugins=lj_dir)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: job {queued.id} is canceled: it has ended, there is nothing to cancel"
    ]
    assert worker.stop() == 0


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("lj.steps", {"steps": 600, "pause": 0.05}, "JobCancelledError"),
        ("lj.asleep", {"seconds": 60}, "JobCancelledError"),
        ("lj.stubborn", {"seconds": 60}, "JobCancelledError"),
    ],
    ids=["sync-that-looks", "async", "sync-that-never-looks"],
)
def test_a_running_job_cancelled_stops(start_worker, lj, lj_dir, redis_db, name, data, error):
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    handle = switchyard_rq.schedule_action(name, {"id": "r", **data}, registry=lj)
    wait_until(lambda: redis_db.exists("lj:started:r"), 20, worker.text)
    time.sleep(0.3)
    asked = time.monotonic()
    assert handle.cancel() is True
    with pytest.raises(switchyard_rq.JobFailedError) as failed:
        handle.result(timeout=20)
    assert failed.value.error.type == error
    assert handle.status == "canceled"
    # told within the half-second watch (the sync one that never looks: at its 2 s timeout)
    assert time.monotonic() - asked < 10
    assert not redis_db.exists("lj:finished:r")
    # not retried (lj.stubborn has retries), and the worker goes on serving
    assert redis_db.get("lj:started:r") is not None
    assert handle.cancel() is False
    after = switchyard_rq.schedule_action("lj.add", {"x": 1}, registry=lj)
    assert after.result(timeout=20).x == 2
    kinds = [
        json.loads(line)["event"]
        for line in cli("events", "--json", "--last", "50", url=worker_url(redis_db),
                        plugins=lj_dir).stdout.splitlines()
        if json.loads(line)["job"] == handle.id
    ]  # fmt: skip
    assert kinds[0] == "scheduled", kinds
    assert "started" in kinds
    assert kinds[-1] == "cancelled"
    assert "retried" not in kinds
    assert "failed" not in kinds
    assert worker.stop() == 0


def test_a_job_that_fails_after_it_was_asked_to_stop_is_canceled_not_retried(
    start_worker, lj, lj_dir, redis_db
):
    """It fails before its worker's watch tells it (within half a second): the outcome is
    stored as canceled all the same (STEP reads ``sy_cancel``)."""
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    handle = switchyard_rq.schedule_action("lj.quits", {"id": "quits", "seconds": 10}, registry=lj)
    wait_until(lambda: redis_db.exists("lj:started:quits"), 20, worker.text)
    assert handle.cancel() is True
    with pytest.raises(switchyard_rq.JobFailedError):
        handle.result(timeout=20)
    assert handle.status == "canceled"
    assert handle.error.type == "RuntimeError"  # what it failed with
    assert redis_db.zcard("rq:canceled:default") == 1
    assert redis_db.zcard("rq:failed:default") == 0
    assert worker.stop() == 0


def worker_url(conn) -> str:
    kwargs = conn.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


def test_progress_is_seen_from_another_process(start_worker, lj, lj_dir, redis_db, redis_url):
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    handle = switchyard_rq.schedule_action(
        "lj.steps", {"id": "p", "steps": 600, "pause": 0.05}, registry=lj
    )
    wait_until(lambda: handle.progress() is not None, 20, worker.text)
    seen = handle.progress()
    assert seen.total == 600
    assert 1 <= seen.done <= 600
    assert seen.message == f"step {seen.done:g}"
    shown = cli("jobs", "show", handle.id, url=redis_url, plugins=lj_dir)
    assert shown.returncode == 0, shown.stderr
    assert "progress" in shown.stdout
    assert "/600 (" in shown.stdout
    as_json = json.loads(cli("jobs", "show", handle.id, "--json", url=redis_url,
                             plugins=lj_dir).stdout)  # fmt: skip
    assert as_json["progress"]["total"] == 600
    stats = json.loads(cli("stats", "--json", "--window", "0.1", url=redis_url,
                           plugins=lj_dir).stdout)  # fmt: skip
    assert [row["id"] for row in stats["progress"]] == [handle.id]
    from switchyard_rq._ops.stats import read_snapshot
    from switchyard_rq._ops.top import build_view, render

    snap = read_snapshot(redis_db)
    lines = render(build_view(snap, snap, "redis"), 200, 100, live=False)
    assert any(handle.id in line and "lj.steps" in line and "/600 (" in line for line in lines)
    wait_until(lambda: handle.progress().done > seen.done, 20, worker.text)  # it moves on
    stored = handle.progress().done
    assert handle.cancel() is True
    with pytest.raises(switchyard_rq.JobFailedError):
        handle.result(timeout=20)
    final = handle.progress()  # the last report, stored with the outcome
    assert final.done >= stored
    assert final.message == f"step {final.done:g}"
    assert redis_db.get("lj:started:p") is not None
    assert not redis_db.exists("switchyard:progress:default")  # out of top's list
    assert worker.stop() == 0


def test_events_are_followed_from_another_process(start_worker, lj, lj_dir, redis_db, redis_url):
    before = switchyard_rq.schedule_action("lj.add", {"x": 100}, registry=lj)  # not followed
    env = {**os.environ, "SWITCHYARD_REDIS_URL": redis_url, "PYTHONPATH": str(lj_dir)}
    follower = subprocess.Popen(
        [sys.executable, "-m", "switchyard", "events", "--follow", "--action", "lj.add",
         "--json", "--max", "8"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.5)  # it reads where each stream ends, then blocks
        worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
        switchyard_rq.schedule_action("lj.words", {"x": 1}, registry=lj)  # filtered out
        first = switchyard_rq.schedule_action("lj.add", {"x": 1}, registry=lj)
        second = switchyard_rq.schedule_action("lj.add", {"x": 2}, registry=lj)
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert {e["action"] for e in events} == {"lj.add"}
    # it follows from where the streams ended: the earlier job's scheduling is not shown
    assert [e["event"] for e in events if e["job"] == before.id] == ["started", "succeeded"]
    for handle in (first, second):
        mine = [e["event"] for e in events if e["job"] == handle.id]
        assert mine == ["scheduled", "started", "succeeded"]
    assert worker.stop() == 0


def test_events_off_writes_no_stream(start_worker, lj, lj_dir, redis_db, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_EVENTS", "0")
    worker = start_worker(
        "--min", "1", "--max", "1", plugins=lj_dir, extra_env={"SWITCHYARD_EVENTS": "off"}
    )
    assert switchyard_rq.schedule_action("lj.add", {"x": 1}, registry=lj).result(20).x == 2
    assert not redis_db.exists("switchyard:events:default")
    assert worker.stop() == 0
