"""Reading results: one round trip for a finished job, many at once with gather / agather."""

from __future__ import annotations

import asyncio
import threading

import pytest

import switchyard_rq


@pytest.fixture
def serving(conn, reg):
    """A consumer running in a thread until the test ends."""
    stop = threading.Event()
    consumer = switchyard_rq.Consumer(conn, ["default", "hinted"], registry=reg, log_jobs=False)
    thread = threading.Thread(target=consumer.run, kwargs={"stop": stop, "idle_timeout": 0.1})
    thread.start()
    yield consumer
    stop.set()
    thread.join(10)
    consumer.close()


def test_gather_returns_every_output_in_order(conn, reg, serving):
    handles = switchyard_rq.schedule_many(
        [("demo.double", {"x": i}) for i in range(300)], registry=reg
    )
    outputs = switchyard_rq.gather(handles, timeout=30)
    assert [o.y for o in outputs] == [2 * i for i in range(300)]


def test_gather_raises_the_first_failure_or_returns_it_in_place(conn, reg, serving):
    handles = switchyard_rq.schedule_many(
        [("demo.double", {"x": 1}), ("demo.boom", {"x": 1}), ("demo.double", {"x": 2})],
        registry=reg,
    )
    with pytest.raises(switchyard_rq.JobFailedError, match="boom") as failed:
        switchyard_rq.gather(handles, timeout=30)
    assert failed.value.job_id == handles[1].id
    ok, error, other = switchyard_rq.gather(handles, timeout=30, return_exceptions=True)
    assert (ok.y, other.y) == (2, 4)
    assert isinstance(error, switchyard_rq.JobFailedError)
    assert error.error.type == "ValueError"


def test_gather_names_a_job_redis_does_not_have_and_times_out(conn, reg):
    missing = switchyard_rq.JobHandle("no-such-job", connection=conn, registry=reg)
    (found,) = switchyard_rq.gather([missing], timeout=1, return_exceptions=True)
    assert isinstance(found, switchyard_rq.JobNotFoundError)
    waiting = switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)  # no worker
    with pytest.raises(switchyard_rq.ResultTimeoutError, match=waiting.id):
        switchyard_rq.gather([waiting], timeout=0.2)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        switchyard_rq.gather([waiting], timeout=-1)


def test_agather_waits_without_blocking_the_loop(conn, reg, serving):
    handles = switchyard_rq.schedule_many(
        [("demo.double", {"x": i}) for i in range(20)], registry=reg
    )

    async def main() -> list[int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        outputs = await switchyard_rq.agather(handles, timeout=30)
        ticker.cancel()
        assert ticks > 0  # the loop ran while the results were awaited
        return [o.y for o in outputs]

    assert asyncio.run(main()) == [2 * i for i in range(20)]


def test_a_finished_jobs_result_is_one_command(conn, reg, consumer):
    handle = switchyard_rq.schedule_action("demo.double", {"x": 21}, registry=reg)
    assert consumer.run(max_jobs=1, idle_timeout=0.1) == 1
    fresh = switchyard_rq.JobHandle(handle.id, registry=reg)  # knows nothing of the job yet
    fresh.connection.ping()  # the connection is open: count the result's commands alone
    conn.config_resetstat()
    assert fresh.result(timeout=1).y == 42  # type: ignore[attr-defined]
    stats = conn.info("commandstats")
    used = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    used.pop("info", None)
    used.pop("config|resetstat", None)
    assert used == {"hmget": 1}  # one command: no pipeline, no read of RQ's result stream
