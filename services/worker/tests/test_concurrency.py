"""Many jobs at once in each pool process, with real worker processes and real Redis: async and
threaded jobs side by side, SIGKILL with hundreds in flight, a concurrency limit held across
processes under kill -9, graceful stops with jobs in flight."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import switchyard_rq
from switchyard_worker_testkit import free_port, scrape


def wait_until(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(message())


def runs(conn, ids):
    with conn.pipeline(transaction=False) as pipe:
        for i in ids:
            pipe.scard(f"wtest:runs:{i}")
        values = pipe.execute()
    return {i: int(v) for i, v in zip(ids, values, strict=True)}


@pytest.mark.parametrize("action", ["wtest.await", "wtest.threaded"])
def test_jobs_that_wait_run_many_at_once_in_each_process(start_worker, registry, redis_db, action):
    worker = start_worker("--min", "2", "--max", "2", "--concurrency", "15")
    worker.wait_ready(2, redis_db)
    calls = [(action, {"id": f"c{i}", "seconds": 3.0}) for i in range(30)]
    handles = switchyard_rq.schedule_many(calls, registry=registry)
    # all thirty are in their handlers before any has ended: 2 processes x 15 at once
    wait_until(lambda: redis_db.scard("wtest:started") == 30, 20, worker.text)
    assert redis_db.zcard("rq:finished:default") == 0
    assert {h.result(timeout=30).runs for h in handles} == {1}
    assert worker.stop() == 0


def test_sigkill_with_200_in_flight_loses_none_and_reruns_only_by_policy(
    start_worker, registry, redis_db
):
    worker = start_worker("--min", "1", "--max", "1", "--concurrency", "200")
    worker.wait_ready(1, redis_db)
    calls = [("wtest.await", {"id": f"i{i}", "seconds": 2.0}) for i in range(150)]
    calls += [("wtest.aonce", {"id": f"o{i}", "seconds": 2.0}) for i in range(50)]
    calls += [("wtest.await", {"id": f"w{i}", "seconds": 0.01}) for i in range(50)]
    handles = switchyard_rq.schedule_many(calls, registry=registry)
    wait_until(lambda: redis_db.scard("wtest:started") >= 200, 30, worker.text)
    in_flight = {m.decode() for m in redis_db.smembers("wtest:started")}
    assert redis_db.zcard("rq:finished:default") == 0  # all 200 are running now
    (child,) = worker.children()
    subprocess.run(["kill", "-9", str(child)], check=True)

    by_id = {call[1]["id"]: h for call, h in zip(calls, handles, strict=True)}
    wait_until(lambda: all(h.status in {"finished", "failed"} for h in handles), 60, worker.text)
    counts = runs(redis_db, list(by_id))
    for job_id, handle in by_id.items():
        killed = job_id in in_flight
        if job_id.startswith("o") and killed:  # not idempotent, cut short: failed, not rerun
            assert handle.status == "failed", job_id
            assert handle.error.type == "WorkerDiedError"
            assert counts[job_id] == 1
        else:  # idempotent: runs again if it was cut short, else once
            assert handle.status == "finished", job_id
            assert counts[job_id] == (2 if killed else 1), job_id
    assert len(in_flight) == 200
    assert "was killed by SIGKILL" in worker.text()
    assert worker.stop() == 0


def _overlap(spans, kills):
    """The most runs at once, from the handlers' own start/end records; a killed process's runs
    end when it was killed."""
    events = []
    open_runs = {}
    for raw in spans:
        pid, job_id, mark, at = raw.decode().split()
        if mark == "+":
            open_runs[(pid, job_id)] = float(at)
            events.append((float(at), 1))
        else:
            open_runs.pop((pid, job_id), None)
            events.append((float(at), -1))
    for (pid, _), _started in open_runs.items():
        events.append((kills[pid], -1))
    now = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        now += delta
        peak = max(peak, now)
    return peak


def test_a_concurrency_limit_holds_across_three_processes_under_kill_9(
    start_worker, registry, redis_db
):
    port = free_port()
    worker = start_worker(
        "--min", "3", "--max", "3", "--concurrency", "16", "--health-port", str(port)
    )
    worker.wait_ready(3, redis_db)
    ids = [f"l{i}" for i in range(60)]
    handles = switchyard_rq.schedule_many(
        [("wtest.limited", {"id": i, "seconds": 0.3}) for i in ids], registry=registry
    )
    kills: dict[str, float] = {}
    for threshold in (6, 20):
        wait_until(lambda t=threshold: redis_db.llen("wtest:spans") >= 2 * t, 60, worker.text)
        victim = next(
            pid.decode().split()[0]
            for pid in reversed(redis_db.lrange("wtest:spans", 0, -1))
            if pid.decode().split()[2] == "+"
        )
        now = redis_db.time()
        kills[victim] = now[0] + now[1] / 1e6
        subprocess.run(["kill", "-9", victim], check=False)
    wait_until(lambda: all(h.status == "finished" for h in handles), 90, worker.text)
    spans = redis_db.lrange("wtest:spans", 0, -1)
    assert _overlap(spans, kills) <= 3
    counts = runs(redis_db, ids)
    assert max(counts.values()) <= 2
    assert min(counts.values()) == 1
    assert worker.text().count("was killed by SIGKILL") == len(kills)
    assert redis_db.zcard("switchyard:flow:c:wtest.limited") == 0
    # the limit and its use are on /metrics (the supervisor reads them each tick: wait for a
    # tick after the last job ended)
    label = (("limit", "wtest.limited"),)

    def shown() -> tuple[float | None, float | None]:
        metrics = scrape(port)
        return (
            metrics.get(("switchyard_concurrency_limit", label)),
            metrics.get(("switchyard_concurrency_in_use", label)),
        )

    wait_until(lambda: shown() == (3.0, 0.0), 10, lambda: f"{shown()}\n{worker.text()}")
    assert worker.stop() == 0


def test_sigterm_lets_running_async_jobs_end(start_worker, registry, redis_db):
    worker = start_worker("--min", "1", "--max", "1", "--concurrency", "10", "--grace", "20")
    worker.wait_ready(1, redis_db)
    handles = switchyard_rq.schedule_many(
        [("wtest.await", {"id": f"g{i}", "seconds": 1.5}) for i in range(10)], registry=registry
    )
    wait_until(lambda: redis_db.scard("wtest:started") == 10, 20, worker.text)
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(20) == 0
    assert {h.status for h in handles} == {"finished"}
    assert worker.children() == []


def test_async_jobs_past_the_grace_are_given_back_by_their_process(
    start_worker, registry, redis_db
):
    worker = start_worker("--min", "1", "--max", "1", "--concurrency", "10", "--grace", "2")
    worker.wait_ready(1, redis_db)
    handles = switchyard_rq.schedule_many(
        [("wtest.await", {"id": f"s{i}", "seconds": 60}) for i in range(4)], registry=registry
    )
    wait_until(lambda: redis_db.scard("wtest:started") == 4, 20, worker.text)
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(20) == 0
    assert "gave up 4 job(s) still running" in worker.text()
    assert "did not finish in time" not in worker.text()  # the process ended on its own
    assert {h.status for h in handles} == {"queued"}
    assert redis_db.llen("rq:queue:default") == 4
