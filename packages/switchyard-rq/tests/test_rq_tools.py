"""Stock RQ tools on Switchyard's jobs: the real `rq` command against db 7."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from switchyard_rq_testkit import URL  # type: ignore[import-not-found]

import switchyard_rq


def rq(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "rq"
    command = str(exe) if exe.exists() else shutil.which("rq")
    if command is None:
        pytest.skip("no rq command")
    return subprocess.run(
        [command, *args, "--url", URL], capture_output=True, text=True, timeout=60, check=False
    )


def test_rq_info_shows_queues_jobs_and_the_consumer(conn, reg, consumer):
    switchyard_rq.schedule_many([("demo.double", {"x": i}) for i in range(3)], registry=reg)
    consumer.register()
    done = rq("info", "--raw")
    assert done.returncode == 0, done.stderr
    assert "queue default 3" in done.stdout
    assert "worker t-consumer" in done.stdout
    consumer.run(max_jobs=3, idle_timeout=0.1)
    by_queue = rq("info", "--by-queue")
    assert by_queue.returncode == 0, by_queue.stderr
    assert "default" in by_queue.stdout
    assert "t-consumer" in by_queue.stdout
    assert "default      | 0" in by_queue.stdout  # no jobs left


def test_rq_requeue_of_a_failed_job_then_a_consumer_runs_it(conn, reg, consumer):
    handle = switchyard_rq.schedule_action("demo.flaky", {"x": 3}, registry=reg)
    conn.hdel(f"rq:job:{handle.id}", "retries_left", "retry_intervals")  # fail at once
    consumer.run(max_jobs=1, idle_timeout=0.1)
    assert handle.status == "failed"
    done = rq("requeue", "--queue", "default", "--serializer", "switchyard_rq.JSONSerializer",
              handle.id)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Requeueing 1 jobs" in done.stdout
    assert handle.status == "queued"
    # attempts 2 and 3 fail too (flaky fails while attempt <= 3): requeue until it succeeds
    for _ in range(2):
        consumer.run(max_jobs=1, idle_timeout=1.5)  # rq rings no doorbell: found by polling
        assert handle.requeue() is True
    consumer.run(max_jobs=1, idle_timeout=1.5)
    assert handle.result(timeout=1).attempt == 4  # type: ignore[attr-defined]
    assert handle.requeue() is False


def test_a_stock_rq_worker_can_run_a_switchyard_job_through_the_dispatcher(conn, reg):
    from rq import Queue, SimpleWorker
    from switchyard.testing import use_registry

    handle = switchyard_rq.schedule_action("demo.double", {"x": 4}, registry=reg)
    queue = Queue("default", connection=conn, serializer=switchyard_rq.JSONSerializer)
    worker = SimpleWorker([queue], connection=conn, serializer=switchyard_rq.JSONSerializer)
    with use_registry(reg):
        assert worker.work(burst=True, logging_level="ERROR")
    assert handle.result(timeout=1).y == 8  # type: ignore[attr-defined]
