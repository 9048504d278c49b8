"""A consumer process killed with SIGKILL mid-job: its safety copy is recovered."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from switchyard_rq_testkit import URL  # type: ignore[import-not-found]

import switchyard_rq

CHILD = Path(__file__).parent / "consumer_child.py"


def start_child(name: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), URL, name], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def stop(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("action", "outcome"), [("demo.nap", "requeued"), ("demo.charge", "failed")]
)
def test_sigkill_mid_job_then_recover_orphans(conn, reg, consumer, action, outcome):
    child = start_child("victim")
    try:
        handle = switchyard_rq.schedule_action(action, {"seconds": 30}, registry=reg)
        wait_for(lambda: handle.status == "started")
        assert conn.lrange("switchyard:consumer:victim:processing", 0, -1) == [handle.id.encode()]
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        stop(child)
    assert conn.sismember("switchyard:consumers", "victim")
    # the heartbeat key still lives, but the supervisor knows "victim" is gone
    assert switchyard_rq.recover_orphans(conn, alive_names=["t-consumer"], prefix="vic") == [
        handle.id
    ]
    # forgotten once recovered: the set does not grow with every process that ever died
    assert not conn.sismember("switchyard:consumers", "victim")
    assert conn.exists("switchyard:consumer:victim:processing") == 0
    assert not conn.sismember("rq:workers", "rq:worker:victim")
    assert conn.zcard("rq:wip:default") == 0
    if outcome == "requeued":
        assert handle.status == "queued"
        assert conn.lrange("rq:queue:default", 0, -1) == [handle.id.encode()]
        assert handle.cancel() is True  # (the next test runs a recovered job to the end)
    else:
        assert handle.status == "failed"
        assert handle.error == switchyard_rq.JobError(
            "WorkerDiedError", "worker died mid-run; action is not idempotent", action
        )
        assert conn.llen("rq:queue:default") == 0
    assert switchyard_rq.recover_orphans(conn, alive_names=["t-consumer"]) == []


def test_recovered_job_runs_again_and_attempt_counts(conn, reg, consumer):
    child = start_child("victim2")
    try:
        handle = switchyard_rq.schedule_action("demo.nap", {"seconds": 0.5}, registry=reg)
        wait_for(lambda: handle.status == "started")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        stop(child)
    conn.delete("switchyard:consumer:victim2:alive")  # as if its heartbeat had expired
    assert switchyard_rq.recover_orphans(conn) == [handle.id]
    assert consumer.run(max_jobs=1, idle_timeout=0.5) == 1
    assert handle.result(timeout=1).attempt == 2  # type: ignore[attr-defined]


def test_live_consumers_are_left_alone(conn, reg, consumer):
    consumer.register()
    assert switchyard_rq.recover_orphans(conn) == []
    assert switchyard_rq.recover_orphans(conn, alive_names=["t-consumer"]) == []
    assert conn.sismember("switchyard:consumers", "t-consumer")


def test_jobs_finished_before_the_crash_are_not_rerun(conn, reg):
    """Outcomes are sent as each job ends (replies read later): a batch's finished jobs stay
    finished when the consumer dies on a later job of the same batch."""
    child = start_child("victim3")
    try:
        *quick, slow = switchyard_rq.schedule_many(  # one batch for the consumer
            [("demo.double", {"x": 1}), ("demo.double", {"x": 2}), ("demo.nap", {"seconds": 30})],
            registry=reg,
        )
        wait_for(lambda: quick[-1].status == "finished")  # stored as it ended, unconfirmed
        time.sleep(0.2)  # the nap is running
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        stop(child)
    assert slow.status == "started"
    assert [h.status for h in quick] == ["finished", "finished"]
    assert [h.result(timeout=1).y for h in quick] == [2, 4]  # type: ignore[attr-defined]
    assert switchyard_rq.recover_orphans(conn, alive_names=[]) == [slow.id]
    assert slow.cancel() is True


def test_recovered_jobs_go_back_in_their_order(conn, reg):
    handles = switchyard_rq.schedule_many(
        [("demo.double", {"x": i}) for i in range(3)], registry=reg
    )
    # as a consumer that died holding a prefetched batch leaves them
    for handle in handles:
        conn.lmove("rq:queue:default", "switchyard:consumer:gone:processing", "LEFT", "RIGHT")
        conn.hset(f"rq:job:{handle.id}", "status", "started")
    conn.sadd("switchyard:consumers", "gone")
    assert sorted(switchyard_rq.recover_orphans(conn)) == sorted(h.id for h in handles)
    assert conn.lrange("rq:queue:default", 0, -1) == [h.id.encode() for h in handles]
    assert [h.status for h in handles] == ["queued"] * 3


def test_a_consumer_idle_on_the_doorbell_wakes_at_once_for_a_recovered_job(conn, reg, consumer):
    """Recovery rings the queue's doorbell: a consumer blocked on it (for up to 30 s here) runs
    the job given back at once, not at the end of its idle wait."""
    handle = switchyard_rq.schedule_action("demo.double", {"x": 4}, registry=reg)
    # as a consumer that died holding it leaves it, the token its push rang long taken
    conn.lmove("rq:queue:default", "switchyard:consumer:gone:processing", "LEFT", "RIGHT")
    conn.hset(f"rq:job:{handle.id}", "status", "started")
    conn.sadd("switchyard:consumers", "gone")
    conn.delete("switchyard:wake:default")
    halt = threading.Event()
    thread = threading.Thread(target=consumer.run, kwargs={"stop": halt, "idle_timeout": 30.0})
    thread.start()
    try:
        wait_for(lambda: conn.zscore("switchyard:idle:default", "t-consumer") is not None)
        assert switchyard_rq.recover_orphans(conn) == [handle.id]
        assert handle.result(timeout=5).y == 8  # type: ignore[attr-defined]
    finally:
        halt.set()
        conn.rpush("switchyard:wake:default", "1")  # out of its wait, to see the stop
        thread.join(timeout=10)
    assert not thread.is_alive()
