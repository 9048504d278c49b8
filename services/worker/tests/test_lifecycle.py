"""What a worker leaves behind, with real processes: nothing, however its supervisor ends.

A supervisor SIGKILLed (or dead of anything else) takes its pool with it: each pool process
finishes the job in hand and leaves, and multiprocessing's forkserver and resource tracker end
once no pool process holds them. A supervisor stopped by a signal stops and reaps them itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import switchyard_rq
from switchyard_worker_testkit import process_state, running  # type: ignore[import-not-found]

#: seconds for the orphans to go: a job of 1.5 s in hand, then a clean exit; generous, for a
#: loaded 2-core machine (they take ~2 s when idle)
ORPHANS_GONE_WITHIN = 20.0


def wait_until(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(message())


def runs(conn, ids):
    return {i: int(conn.scard(f"wtest:runs:{i}")) for i in ids}


def test_a_sigkilled_supervisor_takes_its_pool_with_it(start_worker, registry, redis_db):
    worker = start_worker("--min", "2", "--max", "2", "--concurrency", "1")
    worker.wait_ready(2, redis_db)
    ids = [f"o{i}" for i in range(6)]
    handles = switchyard_rq.schedule_many(
        [("wtest.count", {"id": i, "seconds": 1.5}) for i in ids], registry=registry
    )
    wait_until(lambda: sum(runs(redis_db, ids).values()) >= 2, 20, worker.text)
    family = worker.family()
    assert sorted(family.values()) == ["forkserver", "pool", "pool", "resource tracker"], family
    in_hand = [i for i, n in runs(redis_db, ids).items() if n]

    os.kill(worker.pid, signal.SIGKILL)
    killed = time.monotonic()
    try:
        wait_until(
            lambda: not running(family),
            ORPHANS_GONE_WITHIN,
            lambda: (
                f"still running {ORPHANS_GONE_WITHIN:g} s after the supervisor's SIGKILL: "
                + ", ".join(f"{family[p]} {p}" for p in running(family))
                + f"\n{worker.text()}"
            ),
        )
    finally:
        for pid in running(family):  # today's orphans would run forever: end ours
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    gone_after = time.monotonic() - killed
    print(f"orphans gone {gone_after:.2f} s after the SIGKILL, load {os.getloadavg()[0]:.2f}")
    assert "is gone; stopping after the job in hand" in worker.text()

    # the jobs in hand finished, once; the orphans took no other job
    counts = runs(redis_db, ids)
    assert {i: counts[i] for i in in_hand} == dict.fromkeys(in_hand, 1)
    assert {h.id: h.status for h in handles if h.status == "finished"} == {
        h.id: "finished" for h, i in zip(handles, ids, strict=True) if i in in_hand
    }
    assert sum(counts.values()) == len(in_hand), counts

    # a new worker runs the rest, each job once: nothing was left half-taken
    again = start_worker("--min", "2", "--max", "2", "--recover-interval", "0.5")
    for handle in handles:
        assert handle.result(timeout=30).runs == 1
    assert runs(redis_db, ids) == dict.fromkeys(ids, 1)
    assert again.stop() == 0


def test_a_stopped_worker_leaves_no_process_behind(start_worker, registry, redis_db):
    worker = start_worker("--min", "4", "--max", "4", "--grace", "10")
    worker.wait_ready(4, redis_db)
    handles = switchyard_rq.schedule_many(
        [("wtest.count", {"id": f"t{i}", "seconds": 0.5}) for i in range(8)], registry=registry
    )
    wait_until(lambda: redis_db.exists("wtest:runs:t0"), 20, worker.text)
    family = worker.family()
    assert sorted(set(family.values())) == ["forkserver", "pool", "resource tracker"], family

    assert worker.stop() == 0
    # at the moment the supervisor exits, its forkserver and resource tracker have ended and
    # been reaped by it: no process left, not even a zombie for init to collect
    left = {pid: process_state(pid) for pid in family if process_state(pid) is not None}
    for pid in running(left):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == {}, {f"{family[p]} {p}": state for p, state in left.items()}
    assert {h.status for h in handles} <= {"finished", "queued"}
