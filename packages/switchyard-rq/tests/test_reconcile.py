"""What the worker service asked of the transport: live consumers are never recovered, a lost
reply strands no job, prefetching never leaves a consumer idle beside a waiting job, scheduling
does not scan the environment, and recovery fails only the job that was really running."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
from pydantic import BaseModel
from switchyard import Context, action
from switchyard.testing import make_registry
from switchyard_rq_testkit import RedisServer  # type: ignore[import-not-found]

import switchyard_rq

RAN: list[tuple[str, int]] = []  # (job id, attempt) of every run of the actions below
RAN_LOCK = threading.Lock()


class Item(BaseModel):
    n: int
    seconds: float = 0.0


class Done(BaseModel):
    n: int
    attempt: int


def _record(data: Item, ctx: Context) -> Done:
    with RAN_LOCK:
        RAN.append((ctx.job_id or "", ctx.attempt))
    time.sleep(data.seconds)
    return Done(n=data.n, attempt=ctx.attempt)


@action("rec.count")
def count(data: Item, ctx: Context) -> Done:
    return _record(data, ctx)


@action("rec.once", idempotent=False)
def once(data: Item, ctx: Context) -> Done:
    return _record(data, ctx)


@pytest.fixture
def registry():  # type: ignore[no-untyped-def]
    RAN.clear()
    return make_registry(count, once)


def runs_of(job_id: str) -> list[int]:
    return [attempt for ran, attempt in RAN if ran == job_id]


def stop_after(seconds: float) -> threading.Event:
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.daemon = True
    timer.start()
    return stop


# -- a consumer named alive is never dead (request 4) ------------------------------------------


def _orphan(conn: redis.Redis, consumer: str, handle: switchyard_rq.JobHandle) -> None:
    """As a consumer that took ``handle``'s job leaves it: in its processing list, started."""
    assert conn.lmove("rq:queue:default", f"switchyard:consumer:{consumer}:processing") is not None
    conn.hset(
        f"rq:job:{handle.id}", mapping={"status": "started", "sy_exec": "e-1", "sy_run": "e-1"}
    )
    conn.sadd("switchyard:consumers", consumer)


def test_a_consumer_named_alive_is_kept_even_without_its_heartbeat(conn, registry):
    handle = switchyard_rq.schedule_action("rec.count", {"n": 1}, registry=registry)
    _orphan(conn, "host.7.1", handle)  # its heartbeat key is missing (lapsed in a restart)
    assert switchyard_rq.recover_orphans(conn, alive_names=["host.7.1"], prefix="host.7.") == []
    assert switchyard_rq.recover_orphans(conn, alive_names=["host.7.1"]) == []
    assert handle.status == "started"
    # the supervisor's sweep: a child it does not name is dead, heartbeat or not
    conn.set("switchyard:consumer:host.7.1:alive", "x", ex=15)
    assert switchyard_rq.recover_orphans(conn, alive_names=[], prefix="host.7.") == [handle.id]
    assert handle.status == "queued"


def test_consumers_outside_the_prefix_are_judged_by_their_heartbeat(conn, registry):
    beating, silent = switchyard_rq.schedule_many(
        [("rec.count", {"n": 1}), ("rec.count", {"n": 2})], registry=registry
    )
    _orphan(conn, "other.1.1", beating)
    conn.set("switchyard:consumer:other.1.1:alive", "x", ex=15)
    _orphan(conn, "other.1.2", silent)
    assert switchyard_rq.recover_orphans(conn, alive_names=[], prefix="host.7.") == [silent.id]
    assert (beating.status, silent.status) == ("started", "queued")


# -- a lost reply strands nothing (request 5) --------------------------------------------------


class LossyProxy:
    """A TCP proxy in front of Redis that loses one reply: the first chunk from the server that
    contains ``needle`` is not delivered and that connection is closed, as when a link dies
    after the server ran a command but before its answer arrived."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.needle: bytes | None = None
        self.dropped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if replies and self.needle is not None and self.needle in chunk:
                    self.needle = None
                    self.dropped.set()
                    break
                sink.sendall(chunk)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy(conn: redis.Redis) -> Iterator[LossyProxy]:
    port = conn.connection_pool.connection_kwargs["port"]
    lossy = LossyProxy(port)
    yield lossy
    lossy.close()


def test_a_job_whose_dequeue_reply_was_lost_runs_once_even_if_not_idempotent(conn, registry, proxy):
    handle = switchyard_rq.schedule_action("rec.once", {"n": 1}, registry=registry)
    proxy.needle = handle.id.encode()  # the dequeue's reply carries the job id
    db = conn.connection_pool.connection_kwargs["db"]
    client = switchyard_rq.get_connection(f"redis://127.0.0.1:{proxy.port}/{db}")
    worker = switchyard_rq.Consumer(client, ["default"], registry=registry, name="lossy")
    with worker:
        ran = worker.run(stop=stop_after(5), max_jobs=1, idle_timeout=0.2)
    assert proxy.dropped.is_set()
    assert ran == 1
    assert handle.status == "finished"
    assert runs_of(handle.id) == [1]  # ran once, and the lost dequeue was no attempt
    assert conn.llen("switchyard:consumer:lossy:processing") == 0
    assert conn.zcard("rq:wip:default") == 0


def test_a_new_consumer_settles_what_its_name_left_before_taking_jobs(conn, registry):
    left, waiting = switchyard_rq.schedule_many(
        [("rec.count", {"n": 1}), ("rec.count", {"n": 2})], registry=registry
    )
    _orphan(conn, "reborn", left)  # a process of this name died holding it
    with switchyard_rq.Consumer(conn, ["default"], registry=registry, name="reborn") as worker:
        assert worker.run(stop=stop_after(5), max_jobs=2, idle_timeout=0.2) == 2
    assert (left.status, waiting.status) == ("finished", "finished")
    assert [ran for ran, _ in RAN] == [left.id, waiting.id]
    assert conn.llen("switchyard:consumer:reborn:processing") == 0


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (ports 6440-6449), AOF on, that it restarts."""
    server = RedisServer(tmp_path, ports=(6440, 6449), fsync="everysec")
    server.start()
    yield server
    server.stop()


def test_redis_restarted_twice_mid_run_every_job_runs_once(aof_redis, registry, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", aof_redis.url)
    conn = switchyard_rq.get_connection(aof_redis.url)
    stop = threading.Event()
    workers = [
        switchyard_rq.Consumer(conn, ["default"], registry=registry, name=f"r{i}") for i in (1, 2)
    ]
    threads = [
        threading.Thread(target=w.run, kwargs={"stop": stop, "idle_timeout": 0.1}) for w in workers
    ]
    for thread in threads:
        thread.start()
    handles: list[switchyard_rq.JobHandle] = []
    try:
        for restart in range(3):
            for burst in range(10):
                handles += switchyard_rq.schedule_many(
                    [("rec.count", {"n": burst, "seconds": 0.002})] * 10, registry=registry
                )
                time.sleep(0.01)
            if restart < 2:
                aof_redis.stop()  # mid-run: jobs queued, running, outcomes in flight
                time.sleep(0.3)
                aof_redis.start()
        for handle in handles:
            handle.result(timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for worker in workers:
            worker.close()
    assert len(handles) == 300
    assert all(h.status == "finished" for h in handles)
    counts: dict[str, int] = {}
    for ran, _ in RAN:
        counts[ran] = counts.get(ran, 0) + 1
    assert sorted(counts) == sorted(h.id for h in handles)
    assert [job for job, n in counts.items() if n > 1] == []  # none ran twice
    assert conn.llen("switchyard:consumer:r1:processing") == 0
    assert conn.llen("switchyard:consumer:r2:processing") == 0
    assert conn.zcard("rq:wip:default") == 0


# -- prefetching never leaves a consumer idle beside a waiting job (request 6) ------------------


@pytest.mark.parametrize("how", ["one batch", "back to back"])
def test_two_slow_jobs_run_in_parallel_on_two_idle_consumers(conn, registry, how):
    stop = threading.Event()
    workers = [
        switchyard_rq.Consumer(conn, ["default"], registry=registry, name=f"idle{i}")
        for i in (1, 2)
    ]
    # idle for up to 30 s: only the doorbell wakes them in time
    threads = [
        threading.Thread(target=w.run, kwargs={"stop": stop, "idle_timeout": 30.0}) for w in workers
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while conn.zcard("switchyard:idle:default") < 2:  # both waiting on the doorbell
            assert time.monotonic() < deadline, "the consumers never went idle"
            time.sleep(0.01)
        if how == "one batch":
            handles = switchyard_rq.schedule_many(
                [("rec.count", {"n": 1, "seconds": 1.0}), ("rec.count", {"n": 2, "seconds": 1.0})],
                registry=registry,
            )
        else:
            handles = [
                switchyard_rq.schedule_action(
                    "rec.count", {"n": n, "seconds": 1.0}, registry=registry
                )
                for n in (1, 2)
            ]
        for handle in handles:
            handle.result(timeout=10)
    finally:
        stop.set()
        conn.rpush("switchyard:wake:default", "1", "1")  # out of their waits, to see the stop
        for thread in threads:
            thread.join(timeout=10)
        for worker in workers:
            worker.close()
    assert not any(thread.is_alive() for thread in threads)
    fields = [
        conn.hmget(f"rq:job:{h.id}", "worker_name", "started_at", "ended_at") for h in handles
    ]
    assert fields[0][0] != fields[1][0]  # one job each
    (start1, end1), (start2, end2) = [
        [datetime.strptime(stamp.decode(), "%Y-%m-%dT%H:%M:%S.%fZ") for stamp in f[1:]]
        for f in fields
    ]
    # in parallel: each started before the other ended (1 s each), not one after the other
    assert start1 < end2
    assert start2 < end1
    assert conn.zcard("switchyard:idle:default") == 0  # closed consumers leave the idle set


def test_a_deep_queue_is_still_taken_in_batches(conn, registry):
    handles = switchyard_rq.schedule_many(
        [("rec.count", {"n": n}) for n in range(40)], registry=registry
    )
    conn.zadd("switchyard:idle:default", {"someone-idle": time.time() + 30})
    with switchyard_rq.Consumer(conn, ["default"], registry=registry, name="batcher") as worker:
        assert worker.run(max_jobs=40, idle_timeout=0.1) == 40
    starts = {conn.hget(f"rq:job:{h.id}", "started_at") for h in handles}
    assert len(starts) < 40  # several jobs shared a dequeue (all but one left for the idle one)
    assert all(h.status == "finished" for h in handles)


# -- scheduling reads a few variables, not the whole environment (request 7) -------------------


class CountingEnviron(dict[str, str]):
    scans = 0

    def items(self):  # type: ignore[no-untyped-def, override]
        CountingEnviron.scans += 1
        return super().items()

    def __iter__(self):  # type: ignore[no-untyped-def]
        CountingEnviron.scans += 1
        return super().__iter__()


def test_schedule_action_does_not_scan_the_environment(conn, registry, monkeypatch):
    environ = CountingEnviron(os.environ)
    monkeypatch.setattr(os, "environ", environ)
    handle = switchyard_rq.schedule_action("rec.count", {"n": 1}, registry=registry)
    CountingEnviron.scans = 0
    for n in range(20):
        switchyard_rq.schedule_action("rec.count", {"n": n}, registry=registry)
    assert CountingEnviron.scans == 0
    assert handle.status == "queued"
    # the variables it does read still count, at once
    environ["SWITCHYARD_DEFAULT_QUEUE"] = "elsewhere"
    moved = switchyard_rq.schedule_action("rec.count", {"n": 2}, registry=registry)
    assert conn.hget(f"rq:job:{moved.id}", "origin") == b"elsewhere"
    environ["SWITCHYARD_RESULT_TTL"] = "60"
    short = switchyard_rq.schedule_action("rec.count", {"n": 3}, registry=registry)
    assert conn.hget(f"rq:job:{short.id}", "result_ttl") == b"60"
    environ["SWITCHYARD_RESULT_TTL"] = "soon"
    with pytest.raises(ValueError, match="SWITCHYARD_RESULT_TTL='soon' is not an integer"):
        switchyard_rq.schedule_action("rec.count", {"n": 4}, registry=registry)


# -- recovery fails only the job that was running (request 8) ----------------------------------


def _dead_with(conn: redis.Redis, consumer: str, handles: list[switchyard_rq.JobHandle]) -> None:
    """A dead consumer's list as a prefetching consumer leaves it: the first job running, the
    others taken with it in one dequeue (attempt counted, execution set) but not started."""
    for n, handle in enumerate(handles, 1):
        conn.lmove("rq:queue:default", f"switchyard:consumer:{consumer}:processing")
        conn.hset(
            f"rq:job:{handle.id}",
            mapping={"status": "started", "sy_exec": f"b-{n}", "sy_attempt": 1},
        )
        conn.zadd("rq:wip:default", {f"{handle.id}:b-{n}": time.time() + 60})
    conn.hset(f"rq:job:{handles[0].id}", "sy_run", "b-1")  # the running mark
    conn.sadd("switchyard:consumers", consumer)


def test_only_the_running_job_of_a_dead_consumer_is_failed(conn, registry):
    running, prefetched, other = switchyard_rq.schedule_many(
        [("rec.once", {"n": 1}), ("rec.once", {"n": 2}), ("rec.count", {"n": 3})],
        registry=registry,
    )
    _dead_with(conn, "crashed", [running, prefetched, other])
    assert sorted(switchyard_rq.recover_orphans(conn)) == sorted(
        [running.id, prefetched.id, other.id]
    )
    assert running.status == "failed"
    assert running.error == switchyard_rq.JobError(
        "WorkerDiedError", "worker died mid-run; action is not idempotent", "rec.once"
    )
    assert (prefetched.status, other.status) == ("queued", "queued")
    assert conn.lrange("rq:queue:default", 0, -1) == [prefetched.id.encode(), other.id.encode()]
    assert conn.hget(f"rq:job:{prefetched.id}", "sy_attempt") == b"0"  # it never ran
    assert conn.zcard("rq:wip:default") == 0
    with switchyard_rq.Consumer(conn, ["default"], registry=registry) as worker:
        assert worker.run(max_jobs=2, idle_timeout=0.1) == 2
    assert prefetched.result(timeout=1).attempt == 1  # type: ignore[attr-defined]


def test_a_running_idempotent_job_goes_back_and_its_attempt_counts(conn, registry):
    running, prefetched = switchyard_rq.schedule_many(
        [("rec.count", {"n": 1}), ("rec.once", {"n": 2})], registry=registry
    )
    _dead_with(conn, "crashed2", [running, prefetched])
    switchyard_rq.recover_orphans(conn, alive_names=[])
    assert (running.status, prefetched.status) == ("queued", "queued")
    assert conn.hget(f"rq:job:{running.id}", "sy_attempt") == b"1"
    assert conn.hget(f"rq:job:{prefetched.id}", "sy_attempt") == b"0"


def test_an_outcome_kept_through_a_failed_take_is_stored_once_redis_is_back(
    own_redis, registry, monkeypatch
):
    """Redis goes away after a job ended: its outcome waits to go with the next take (as the
    outcomes of jobs that ended together in tasks do), which fails. The outcome must survive,
    be stored on reconnect, and the job not run again."""
    import asyncio

    from switchyard_rq._consumer.link import RedisLink
    from switchyard_rq._consumer.source import Outcome, SourceUnavailable

    monkeypatch.setenv("SWITCHYARD_REDIS_URL", own_redis.url)
    conn = switchyard_rq.get_connection(own_redis.url)
    handle = switchyard_rq.schedule_action("rec.count", {"n": 1}, registry=registry)
    link = RedisLink(conn, ["default"], name="kept")
    link.announce()

    async def take() -> list:
        return await link.take(1, running=1, held=0, idle_for=0.1)

    (job,) = asyncio.run(take())
    link._next_promote = time.monotonic() + 60  # the take's own call fails, not a promotion
    own_redis.stop()
    link.settle(Outcome(job, "ok", 0.001, "rec.count", result='{"n": 1, "attempt": 1}'), later=True)
    with pytest.raises(SourceUnavailable):
        asyncio.run(take())
    own_redis.start()
    assert link.resume([]) == 0  # nothing given back: the outcome was stored first
    assert handle.status == "finished"
    assert handle.result(timeout=1).n == 1  # type: ignore[attr-defined]
    assert conn.llen("rq:queue:default") == 0
