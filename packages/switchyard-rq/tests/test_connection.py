"""Connections: URLs, pools, readable failures, and a Redis restarted mid-run."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from switchyard_rq_testkit import URL, free_port  # type: ignore[import-not-found]

import switchyard_rq


def test_one_pool_per_url_per_process():
    url = "redis://127.0.0.1:6379/7"
    assert switchyard_rq.get_connection(url) is switchyard_rq.get_connection(url)
    assert switchyard_rq.get_connection(url) is not switchyard_rq.get_connection(
        "redis://127.0.0.1:6379/8"
    )


def test_tls_and_acl_urls_are_accepted_without_connecting():
    client = switchyard_rq.get_connection("rediss://app:s3cret@127.0.0.1:6399/2")
    pool = client.connection_pool
    assert pool.connection_class.__name__ == "SSLConnection"
    assert pool.connection_kwargs["username"] == "app"
    assert pool.connection_kwargs["password"] == "s3cret"
    assert pool.max_connections == 50
    assert pool.connection_kwargs["health_check_interval"] == 30


def test_unsupported_url_scheme():
    with pytest.raises(ValueError) as bad:  # a RedisConfigError, a ValueError as it was
        switchyard_rq.get_connection("http://user:pw@localhost/0")
    assert str(bad.value) == (
        "bad Redis URL 'http://user:***@localhost/0' (given to get_connection): unknown scheme "
        "'http'; use redis://HOST:PORT/DB, rediss://HOST:PORT/DB, unix:///PATH?db=DB, "
        "redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...] or "
        "redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB] (rediss+ for TLS)"
    )


def test_unreachable_redis_is_one_clear_error_without_the_password(reg, monkeypatch):
    port = free_port(6410, 6419)
    monkeypatch.setenv("SWITCHYARD_REDIS_RETRIES", "2")
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", f"redis://app:hunter2@127.0.0.1:{port}/0")
    started = time.monotonic()
    with pytest.raises(switchyard_rq.RedisUnavailableError) as caught:
        switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    message = str(caught.value)
    assert f"redis://app:***@127.0.0.1:{port}/0" in message
    assert "hunter2" not in message
    assert "SWITCHYARD_REDIS_URL" in message
    assert 0.1 <= time.monotonic() - started < 5  # retried with backoff, then gave up
    with pytest.raises(switchyard_rq.RedisUnavailableError, match="app:\\*\\*\\*@"):
        _ = switchyard_rq.JobHandle("x").status


def test_an_unreachable_redis_fails_a_call_within_one_retry_budget(reg, monkeypatch):
    """One layer of retries, bounded in time (2.5 s by default, docs/transport.md): a web
    request that schedules during an outage waits seconds, not half a minute (27 s when the
    client's retries were nested in the pool's)."""
    port = free_port(6410, 6419)
    monkeypatch.delenv("SWITCHYARD_REDIS_RETRIES", raising=False)
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    for attempt in (
        lambda: switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg),
        lambda: switchyard_rq.JobHandle("x").status,
        lambda: switchyard_rq.get_connection().ping(),
    ):
        started = time.monotonic()
        with pytest.raises((switchyard_rq.RedisUnavailableError, redis.ConnectionError)):
            attempt()
        took = time.monotonic() - started
        assert 1.0 <= took < 10, took  # it did retry; it gave up within the budget (+ margin)


def test_redis_restarted_mid_run(own_redis, reg, monkeypatch):
    """AOF on: producers succeed after backoff, the consumer reconnects, nothing is lost."""
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", own_redis.url)
    conn = switchyard_rq.get_connection(own_redis.url)
    before = switchyard_rq.schedule_many(
        [("demo.double", {"x": i}) for i in range(20)], registry=reg
    )
    stop = threading.Event()
    worker = switchyard_rq.Consumer(conn, ["default"], registry=reg, name="survivor")
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(worker.run(stop=stop, idle_timeout=0.1)))
    thread.start()
    try:
        before[-1].result(timeout=5)
        own_redis.stop()
        restart = threading.Timer(0.4, own_redis.start)
        restart.start()
        # the producer's call lands once the server is back (backoff: 50 ms doubling, 6 tries)
        during = switchyard_rq.schedule_action("demo.double", {"x": 100}, registry=reg)
        restart.join()
        after = switchyard_rq.schedule_many(
            [("demo.double", {"x": i}) for i in range(20)], registry=reg
        )
        assert during.result(timeout=10).y == 200  # type: ignore[attr-defined]
        assert [h.result(timeout=10).y for h in after] == [2 * i for i in range(20)]  # type: ignore[attr-defined]
        assert before[0].status == "finished"  # acknowledged before the restart: kept (AOF)
    finally:
        stop.set()
        thread.join(timeout=10)
        worker.close()
    assert not thread.is_alive()
    assert conn.llen("switchyard:consumer:survivor:processing") == 0


def test_consumer_survives_a_connection_kill(conn, reg, consumer):
    """CLIENT KILL of the consumer's connections: it reconnects and keeps serving."""
    switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    consumer.run(max_jobs=1, idle_timeout=0.1)
    killer = redis.Redis.from_url(URL)  # its own connection, outside the pool
    me = killer.client_id()
    ours = [c["id"] for c in killer.client_list() if str(c["db"]) == "7" and int(c["id"]) != me]
    assert ours
    for client_id in ours:  # only db 7's clients: the shared server's others are not ours
        killer.client_kill_filter(_id=client_id)
    killer.close()
    handle = switchyard_rq.schedule_action("demo.double", {"x": 2}, registry=reg)
    assert consumer.run(max_jobs=1, idle_timeout=0.5) == 1
    assert handle.result(timeout=2).y == 4  # type: ignore[attr-defined]
