"""Databases and cached results with real worker processes, a real PostgreSQL and real Redis:
the pool bound holds across processes whatever the concurrency, the pools' and queries'
numbers reach /metrics and `switchyard stats`, and one input runs once across processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import switchyard
import switchyard_rq
from switchyard_db.testing import temporary_server
from switchyard_worker_testkit import free_port, scrape


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with temporary_server(tmp_path_factory.mktemp("pg")) as server:
        yield server


def most_connections(url: str, stop: threading.Event, seen: list[int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'switchyard'"
            ).fetchone()
            seen.append(int(row[0]) if row else 0)
            time.sleep(0.005)


def test_two_processes_of_32_jobs_never_exceed_their_pools(start_worker, registry, redis_db, pg):
    port = free_port()
    worker = start_worker(
        "--min", "2", "--max", "2", "--concurrency", "32", "--health-port", str(port),
        extra_env={
            "SWITCHYARD_DATABASE_URL": pg.tcp_url("postgres"),
            "SWITCHYARD_DATABASE_MAIN_POOL_SIZE": "3",
        },
    )  # fmt: skip
    worker.wait_ready(2, redis_db)
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=most_connections, args=(pg.url(), stop, seen))
    watcher.start()
    try:
        calls = [("wtest.dbquery", {"id": f"q{i}", "seconds": 0.02}) for i in range(160)]
        handles = switchyard_rq.schedule_many(calls, registry=registry)
        assert {h.result(timeout=60).runs for h in handles} == {1}
    finally:
        stop.set()
        watcher.join()
    assert 1 <= max(seen) <= 6, worker.text()  # 2 processes x pool-size 3
    queries_key = (
        "switchyard_db_queries_total",
        (("action", "wtest.dbquery"), ("database", "main")),
    )
    bound_key = ("switchyard_db_pool_max", (("database", "main"), ("role", "primary")))
    deadline = time.monotonic() + 20
    while True:  # each process flushes its metrics once a second
        metrics = scrape(port)
        flushed = (metrics.get(queries_key), metrics.get(bound_key))
        if flushed == (160, 6) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert flushed == (160, 6)  # every query counted once; both pools' bounds, added
    # every database metric the Grafana dashboard queries is one the worker serves
    dashboard = (Path(__file__).parents[3] / "docs" / "grafana" / "switchyard.json").read_text()
    served = {name for name, _ in metrics}
    queried = set(re.findall(r"switchyard_db_[a-z_]+", dashboard))
    assert queried  # the check below checks something
    assert queried - served == set()
    stats = subprocess.run(
        [sys.executable, "-m", "switchyard", "stats", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    pools = json.loads(stats.stdout)["databases"]["pools"]
    assert [(p["database"], p["role"], p["processes"], p["max"]) for p in pools] == [
        ("main", "primary", 2, 6)
    ]
    assert worker.stop() == 0


@pytest.fixture
def shared_cache(redis_db):
    """This process picks its result cache again: the Redis of this test, not an earlier one's."""
    switchyard.set_result_cache(None)
    yield
    switchyard.set_result_cache(None)


def test_one_input_runs_once_across_processes(start_worker, registry, redis_db, shared_cache):
    worker = start_worker("--min", "2", "--max", "2", "--concurrency", "16")
    worker.wait_ready(2, redis_db)
    calls = [("wtest.cached", {"id": "same", "seconds": 0.5}) for _ in range(12)]
    handles = switchyard_rq.schedule_many(calls, registry=registry)
    assert [h.result(timeout=30).runs for h in handles] == [1] * 12
    assert int(redis_db.get("wtest:cached:same")) == 1
    hit = switchyard_rq.schedule_action(
        "wtest.cached", {"id": "same", "seconds": 0.5}, registry=registry
    )
    assert isinstance(hit, switchyard_rq.CachedHandle)
    assert worker.stop() == 0
