"""Cached action results in Redis: shared by every process, one run per input across them,
invalidation by tag, and schedule_action answering a hit without a job."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from pydantic import BaseModel
from switchyard import Context, action, call_action
from switchyard.testing import make_registry, use_cache, use_registry
from switchyard_rq_testkit import URL

import switchyard_rq
from switchyard_rq._wire.cache import RedisResultCache, result_cache


class In(BaseModel):
    user_id: int


class Out(BaseModel):
    value: int


RUNS: list[int] = []


@action("cached.profile", cache={"ttl": "5m", "tags": ["user:{user_id}"]})
def profile(data: In) -> Out:
    RUNS.append(data.user_id)
    time.sleep(0.2)
    return Out(value=data.user_id * 10)


@action("cached.change")
def change(data: In, ctx: Context) -> Out:
    return Out(value=ctx.invalidate(f"user:{data.user_id}"))


def test_the_extension_is_the_redis_cache_when_a_redis_is_configured(conn):
    found = result_cache()
    assert isinstance(found, RedisResultCache)


def test_callers_with_their_own_clients_share_one_run_and_one_result(conn):
    RUNS.clear()
    outs: list[Out] = []

    def caller() -> None:  # each its own cache object and client: as separate processes are
        with use_cache(RedisResultCache(conn)):
            outs.append(call_action("cached.profile", {"user_id": 4}))

    with use_registry(make_registry(profile, change)):
        threads = [threading.Thread(target=caller) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert RUNS == [4]
    assert outs == [Out(value=40)] * 6
    assert conn.exists("switchyard:cache:t:user:4")


def test_schedule_action_answers_a_hit_without_a_job_and_invalidation_drops_it(conn):
    RUNS.clear()
    reg = make_registry(profile, change)
    with use_cache(RedisResultCache(conn)), use_registry(reg):
        call_action("cached.profile", {"user_id": 5})
        handle = switchyard_rq.schedule_action("cached.profile", {"user_id": 5}, registry=reg)
        assert isinstance(handle, switchyard_rq.CachedHandle)
        assert (handle.status, handle.result()) == ("finished", Out(value=50))
        assert conn.llen("rq:queue:default") == 0  # no job was written
        assert call_action("cached.change", {"user_id": 5}) == Out(value=1)
        again = switchyard_rq.schedule_action("cached.profile", {"user_id": 5}, registry=reg)
        assert not isinstance(again, switchyard_rq.CachedHandle)
        call_action("cached.profile", {"user_id": 6})
        done = subprocess.run(
            [sys.executable, "-m", "switchyard", "cache", "invalidate", "user:6", "user:404"],
            env={**os.environ, "SWITCHYARD_REDIS_URL": URL},
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout == "dropped 1 cached result(s)\n"
        call_action("cached.profile", {"user_id": 6})
    assert RUNS == [5, 6, 6]


def test_a_hit_is_much_faster_than_the_handler(conn):
    RUNS.clear()
    with use_cache(RedisResultCache(conn)), use_registry(make_registry(profile)):
        began = time.perf_counter()
        call_action("cached.profile", {"user_id": 9})
        miss = time.perf_counter() - began  # the handler sleeps 0.2 s
        hits = []
        for _ in range(20):
            began = time.perf_counter()
            assert call_action("cached.profile", {"user_id": 9}).value == 90  # type: ignore[attr-defined]
            hits.append(time.perf_counter() - began)
    assert RUNS == [9]  # the handler ran once
    # the fastest of 20 hits (one round trip, however loaded the machine) against 0.2 s
    assert miss > 10 * min(hits)


def test_top_shows_the_database_pools_and_queries_pool_processes_publish(conn):
    from switchyard_rq._ops.stats import read_snapshot
    from switchyard_rq._ops.top import build_view, render

    buckets = [0.001, 0.01, 0.1]

    def numbers(requests: int, waited: float, queries: int) -> dict:
        pool = {"database": "main", "role": "primary", "size": 8, "max": 8, "in_use": 8,
                "idle": 0, "waiting": 5, "requests": requests, "wait_seconds": waited,
                "errors": 0}  # fmt: skip
        row = [float(queries), queries * 0.002, 0.0, 0.0, float(queries), 0.0, 0.0]
        return {"pools": [pool], "queries": {("main", "users.get_user"): row}, "buckets": buckets}

    switchyard_rq.publish_db_stats(conn, "host.1.1", numbers(100, 1.0, 100))
    switchyard_rq.publish_db_stats(conn, "host.1.2", numbers(50, 0.5, 40))
    before = read_snapshot(conn, [])
    switchyard_rq.publish_db_stats(conn, "host.1.1", numbers(300, 3.0, 300))
    after = read_snapshot(conn, [])
    after.time = before.time + 2.0
    view = build_view(before, after, "redis")
    (pool,) = view["databases"]["pools"]
    assert (pool["processes"], pool["in_use"], pool["max"], pool["waiting"]) == (2, 16, 16, 10)
    assert pool["checkouts_per_s"] == 100.0  # 200 more checkouts in 2 s
    assert pool["mean_wait"] == 0.01
    (query,) = view["databases"]["queries"]
    assert (query["action"], query["rate"], query["mean"]) == ("users.get_user", 100.0, 0.002)
    screen = "\n".join(render(view, 200, 100))
    assert "DATABASE" in screen
    assert "16/16" in screen
    assert "users.get_user" in screen
