"""Reliability with real processes and real Redis: SIGKILLed pool processes, graceful stops with
jobs in flight, and a Redis (AOF on) restarted mid-run."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time

import pytest
import switchyard_rq


def runs(conn, ids):
    """How many times each job id's action body started (one set member per run)."""
    with conn.pipeline(transaction=False) as pipe:
        for i in ids:
            pipe.scard(f"wtest:runs:{i}")
        values = pipe.execute()
    return {i: int(v) for i, v in zip(ids, values, strict=True)}


def wait_until(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(message())


def test_kill_9_during_2000_jobs_loses_none_and_repeats_only_killed_ones(
    start_worker, registry, redis_db
):
    worker = start_worker("--min", "2", "--max", "2", "--recover-interval", "1")
    worker.wait_ready(2, redis_db)
    ids = [f"k{i}" for i in range(2000)]
    calls = [("wtest.count", {"id": i, "seconds": 0.002}) for i in ids]
    handles = switchyard_rq.schedule_many(calls, registry=registry)

    kills = 0
    rng = random.Random(4)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = int(redis_db.zcard("rq:finished:default"))
        if done >= len(ids):
            break
        kids = worker.children()
        if kids and kills < 8 and done > 100 * (kills + 1):
            victim = rng.choice(kids)
            try:
                subprocess.run(["kill", "-9", str(victim)], check=True)
                kills += 1
            except subprocess.CalledProcessError:
                pass  # it was recycling just then
        time.sleep(0.1)

    statuses = {h.id: h.status for h in handles}
    assert sorted(set(statuses.values())) == ["finished"], worker.text()[-3000:]
    counts = runs(redis_db, ids)
    assert min(counts.values()) == 1, "a job never ran"
    repeated = {i: n for i, n in counts.items() if n > 1}
    # each SIGKILL interrupts at most the one job that process held: only those run again
    assert kills >= 5
    assert sum(n - 1 for n in repeated.values()) <= kills, repeated
    assert worker.text().count("was killed by SIGKILL") == kills
    assert worker.proc.poll() is None
    assert worker.stop() == 0


def test_a_job_whose_process_is_killed_runs_again_within_seconds(start_worker, registry, redis_db):
    worker = start_worker("--min", "1", "--max", "1")
    handle = switchyard_rq.schedule_action(
        "wtest.sleep", {"id": "again", "seconds": 1.0}, registry=registry
    )
    wait_until(lambda: redis_db.exists("wtest:started:again"), 20, worker.text)
    first = redis_db.get("wtest:started:again")
    subprocess.run(["kill", "-9", first.decode()], check=True)
    killed = time.monotonic()
    # the replacement process boots (a fresh interpreter) and picks the job up again
    wait_until(lambda: redis_db.get("wtest:started:again") != first, 15, worker.text)
    assert time.monotonic() - killed < 10
    assert handle.result(timeout=20).runs == 1
    assert redis_db.get("wtest:done:again") != first
    assert "was killed by SIGKILL" in worker.text()
    assert "recovered 1 job(s)" in worker.text()
    assert worker.stop() == 0


def test_a_live_process_whose_heartbeat_lapsed_keeps_its_job(start_worker, registry, redis_db):
    """The supervisor's sweep judges its own processes by whether they are alive, not by their
    heartbeat keys (which a Redis restart or a long pause can lose): no job runs twice."""
    worker = start_worker("--min", "1", "--max", "1", "--recover-interval", "0.2")
    handle = switchyard_rq.schedule_action(
        "wtest.count", {"id": "lapsed", "seconds": 1.5}, registry=registry
    )
    wait_until(lambda: redis_db.exists("wtest:runs:lapsed"), 20, worker.text)
    lapsed = list(redis_db.scan_iter("switchyard:consumer:*:alive"))
    assert lapsed
    redis_db.delete(*lapsed)  # refreshed only every 5 s: several sweeps run without it
    assert handle.result(timeout=20).runs == 1
    # a copy requeued meanwhile went to the front of the queue: the one process runs it
    # before a job scheduled now
    after = switchyard_rq.schedule_action("wtest.echo", {"text": "after"}, registry=registry)
    assert after.result(timeout=20).text == "after"
    assert redis_db.scard("wtest:runs:lapsed") == 1
    assert redis_db.llen("rq:queue:default") == 0
    assert "recovered" not in worker.text()
    assert worker.stop() == 0


def test_a_killed_non_idempotent_job_is_failed_not_rerun(start_worker, registry, redis_db):
    worker = start_worker("--min", "1", "--max", "1")
    handle = switchyard_rq.schedule_action(
        "wtest.once", {"id": "once", "seconds": 30}, registry=registry
    )
    wait_until(lambda: redis_db.exists("wtest:started:once"), 20, worker.text)
    pid = int(redis_db.get("wtest:started:once"))
    subprocess.run(["kill", "-9", str(pid)], check=True)

    started = time.monotonic()
    with pytest.raises(switchyard_rq.JobFailedError, match="not idempotent"):
        handle.result(timeout=20)
    assert time.monotonic() - started < 10
    assert handle.error.type == "WorkerDiedError"
    assert redis_db.get("wtest:runs:once") is None  # never ran to the end, never ran again
    worker.wait_children(1)  # replaced
    again = switchyard_rq.schedule_action("wtest.echo", {"text": "next"}, registry=registry)
    assert again.result(timeout=20).text == "next"
    assert worker.stop() == 0


def test_sigterm_finishes_in_flight_jobs_and_leaves_waiting_ones_queued(
    start_worker, registry, redis_db
):
    worker = start_worker("--min", "2", "--max", "2", "--grace", "20")
    worker.wait_ready(2, redis_db)
    # one at a time, so that each lands on its own process (a consumer may prefetch a batch)
    busy = []
    for i in range(2):
        busy.append(
            switchyard_rq.schedule_action(
                "wtest.sleep", {"id": f"g{i}", "seconds": 2.0}, registry=registry
            )
        )
        wait_until(lambda i=i: redis_db.exists(f"wtest:started:g{i}"), 20, worker.text)
    assert redis_db.get("wtest:started:g0") != redis_db.get("wtest:started:g1")  # two pids
    waiting = switchyard_rq.schedule_action("wtest.echo", {"text": "later"}, registry=registry)
    time.sleep(0.2)

    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(20) == 0
    assert redis_db.exists("wtest:done:g0", "wtest:done:g1") == 2
    assert [h.status for h in busy] == ["finished", "finished"]
    assert waiting.status == "queued"  # not taken after the signal, not lost
    assert worker.children() == []


def test_grace_expired_kills_the_job_and_puts_it_back(start_worker, registry, redis_db):
    worker = start_worker("--min", "1", "--max", "1", "--grace", "0.5")
    handle = switchyard_rq.schedule_action(
        "wtest.sleep", {"id": "slow", "seconds": 30}, registry=registry
    )
    wait_until(lambda: redis_db.exists("wtest:started:slow"), 20, worker.text)
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(20) == 0
    assert time.monotonic() - started < 5
    assert "did not finish in time; their jobs are requeued" in worker.text()
    assert handle.status == "queued"
    assert redis_db.lrange("rq:queue:default", 0, -1) == [handle.id.encode()]


@pytest.fixture
def own_redis(tmp_path, redis_server_exe):
    """A redis-server with AOF (fsync always) on port 6421, restartable on the same data."""
    exe = redis_server_exe
    if exe is None:
        pytest.skip("missing service: redis-server (Debian package redis-server)")

    class Server:
        port = 6421
        url = f"redis://127.0.0.1:{port}/0"
        proc: subprocess.Popen[bytes] | None = None

        def start(self) -> None:
            self.proc = subprocess.Popen(
                [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
                 "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            wait_until(self.ping, 10, lambda: f"redis-server on {self.port} did not start")

        def ping(self) -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        def stop(self) -> None:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(10)

    server = Server()
    server.start()
    yield server
    server.stop()


def test_redis_restart_mid_run_loses_nothing_acknowledged(
    start_worker, own_redis, registry, monkeypatch
):
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", own_redis.url)
    conn = switchyard_rq.get_connection(own_redis.url)
    worker = start_worker("--min", "2", "--max", "2", url=own_redis.url)
    worker.wait_ready(2, conn)

    ids = [f"a{i}" for i in range(600)]
    calls = [("wtest.count", {"id": i, "seconds": 0.005}) for i in ids]
    handles = switchyard_rq.schedule_many(calls, registry=registry)
    wait_until(lambda: int(conn.zcard("rq:finished:default")) > 50, 30, worker.text)
    own_redis.stop()  # a clean shutdown with AOF: everything acknowledged is on disk
    time.sleep(1.0)
    own_redis.start()

    late = switchyard_rq.schedule_action("wtest.count", {"id": "late"}, registry=registry)
    assert late.result(timeout=30).runs == 1
    wait_until(lambda: int(conn.zcard("rq:finished:default")) >= len(ids) + 1, 60, worker.text)
    assert {h.status for h in handles} == {"finished"}
    counts = runs(conn, ids)
    assert min(counts.values()) == 1  # nothing acknowledged (scheduled) was lost
    # a reply cut by the restart strands nothing and reruns nothing: a dequeue whose reply was
    # lost goes back to its queue unrun, an outcome sent twice is stored once
    repeated = {i: n for i, n in counts.items() if n > 1}
    assert repeated == {}
    assert worker.proc.poll() is None
    assert worker.stop() == 0
