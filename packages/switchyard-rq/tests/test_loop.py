"""The job loop without Redis (switchyard_rq.testing.MemorySource): lanes, concurrency, timeouts,
retries, resources and stopping, on the real Consumer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest
import switchyard
from pydantic import BaseModel
from switchyard import Context, action
from switchyard.testing import make_registry

from switchyard_rq import Consumer
from switchyard_rq.testing import MemorySource


class Nap(BaseModel):
    seconds: float = 0.0
    n: int = 0


class Done(BaseModel):
    n: int
    attempt: int = 1


class Gauge:
    """How many runs are in their handler now, and the most ever at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.finished: list[int] = []

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


GAUGE = Gauge()
EVENTS: list[str] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    global GAUGE
    GAUGE = Gauge()
    EVENTS.clear()


@action("loop.wait")
async def wait(data: Nap) -> Done:
    with GAUGE:
        await asyncio.sleep(data.seconds)
    GAUGE.finished.append(data.n)
    return Done(n=data.n)


@action("loop.sleep", io_bound=True)
def sleep(data: Nap) -> Done:
    with GAUGE:
        time.sleep(data.seconds)
    GAUGE.finished.append(data.n)
    return Done(n=data.n)


@action("loop.cpu")
def cpu(data: Nap) -> Done:
    with GAUGE:
        time.sleep(data.seconds)
    return Done(n=data.n)


@action("loop.await_past_timeout", timeout=0.2)
async def await_past_timeout(data: Nap) -> Done:
    try:
        await asyncio.sleep(data.seconds)
    except BaseException:
        EVENTS.append("async stopped")
        raise
    EVENTS.append("async survived")
    return Done(n=data.n)


@action("loop.thread_past_timeout", timeout=0.2, io_bound=True)
def thread_past_timeout(data: Nap) -> Done:
    deadline = time.monotonic() + data.seconds
    try:
        while time.monotonic() < deadline:  # Python code: an interrupt lands between two lines
            time.sleep(0.01)
    except BaseException:
        EVENTS.append("thread stopped")
        raise
    EVENTS.append("thread survived")
    return Done(n=data.n)


@action("loop.flaky", retries=2, backoff=0)
async def flaky(data: Nap, ctx: Context) -> Done:
    if ctx.attempt < 3:
        raise ConnectionError(f"attempt {ctx.attempt} failed")
    return Done(n=data.n, attempt=ctx.attempt)


@switchyard.resource
async def client() -> AsyncIterator[dict[str, int]]:
    EVENTS.append("open")
    yield {"uses": 0}
    EVENTS.append("close")


@action("loop.shared")
async def shared(data: Nap, ctx: Context) -> Done:
    pool = await ctx.aresource(client)
    pool["uses"] += 1
    uses = pool["uses"]
    await asyncio.sleep(data.seconds)
    return Done(n=uses)


REG = make_registry(wait, sleep, cpu, await_past_timeout, thread_past_timeout, flaky, shared)


def put(source: MemorySource, name: str, count: int, seconds: float = 0.0) -> list[str]:
    return [source.put(name, {"seconds": seconds, "n": n}, registry=REG) for n in range(count)]


@pytest.mark.parametrize("name", ["loop.wait", "loop.sleep"])
def test_async_and_io_bound_jobs_run_side_by_side_up_to_the_concurrency(name):
    source = MemorySource()
    ids = put(source, name, 40, seconds=0.05)
    with Consumer(source, registry=REG, concurrency=8, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=40, idle_timeout=0.05) == 40
    assert GAUGE.peak == 8  # never more than the concurrency, and all of it used
    assert sorted(source.result(i)["n"] for i in ids) == list(range(40))


def test_cpu_bound_sync_jobs_run_one_at_a_time_whatever_the_concurrency():
    source = MemorySource()
    put(source, "loop.cpu", 6, seconds=0.01)
    with Consumer(source, registry=REG, concurrency=8, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=6, idle_timeout=0.05) == 6
    assert GAUGE.peak == 1


def test_concurrency_one_runs_async_jobs_one_at_a_time_in_order():
    source = MemorySource()
    put(source, "loop.wait", 5, seconds=0.01)
    with Consumer(source, registry=REG, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=5, idle_timeout=0.05) == 5
    assert GAUGE.peak == 1
    assert GAUGE.finished == [0, 1, 2, 3, 4]


def test_a_cpu_job_and_async_jobs_share_the_process():
    source = MemorySource()
    put(source, "loop.wait", 4, seconds=0.2)
    put(source, "loop.cpu", 1, seconds=0.05)
    with Consumer(source, registry=REG, concurrency=8, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=5, idle_timeout=0.05) == 5
    assert len(source.outcomes) == 5
    assert all(o.ok for o in source.outcomes)
    assert GAUGE.peak == 5  # the sync job ran while the four async ones waited


@pytest.mark.parametrize(
    ("name", "kind"), [("loop.await_past_timeout", "async"), ("loop.thread_past_timeout", "thread")]
)
def test_a_run_past_its_timeout_is_stopped_and_fails_with_the_timeout(name, kind):
    source = MemorySource()
    (job,) = put(source, name, 1, seconds=30.0)
    with Consumer(source, registry=REG, concurrency=4, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=1, idle_timeout=0.05) == 1
    outcome = source.outcome(job)
    assert outcome is not None
    assert outcome.mode == "fail"
    assert outcome.error is not None
    assert outcome.error.type == "ActionTimeoutError"
    assert outcome.trips  # a timeout counts for a circuit breaker
    deadline = time.monotonic() + 10  # the handler is stopped, not left to run its 30 s
    while not EVENTS:
        assert time.monotonic() < deadline, "the handler was neither stopped nor ended"
        time.sleep(0.01)
    assert list(EVENTS) == [f"{kind} stopped"]


def test_an_interrupted_thread_serves_the_next_job_unharmed():
    source = MemorySource()
    put(source, "loop.thread_past_timeout", 1, seconds=1.0)
    after = put(source, "loop.sleep", 3, seconds=0.3)
    with Consumer(source, registry=REG, concurrency=1, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=4, idle_timeout=0.05) == 4
    assert [source.outcome(i).mode for i in after] == ["ok", "ok", "ok"]  # type: ignore[union-attr]


def test_retries_run_again_and_count_attempts():
    source = MemorySource()
    job = source.put("loop.flaky", {"n": 7}, registry=REG)
    with Consumer(source, registry=REG, concurrency=4, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=3, idle_timeout=0.05) == 3
    assert [o.mode for o in source.outcomes] == ["retry", "retry", "ok"]
    assert source.result(job) == {"n": 7, "attempt": 3}


def test_bad_jobs_fail_with_their_reason_and_the_loop_goes_on():
    source = MemorySource()
    bad = source.put("x", None, raw=b'["os.system", null, ["rm -rf /"], {}]')
    unknown = source.put("x", None, raw=b'["switchyard_rq.dispatch", null, ["no.such", "{}"], {}]')
    good = put(source, "loop.wait", 1)[0]
    with Consumer(source, registry=REG, concurrency=4, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=3, idle_timeout=0.05) == 3
    assert source.outcome(bad).error.type == "BadJobError"  # type: ignore[union-attr]
    assert source.outcome(unknown).error.type == "UnknownActionError"  # type: ignore[union-attr]
    assert source.outcome(good).ok  # type: ignore[union-attr]


def test_jobs_share_an_async_resource_opened_once_and_closed_with_the_consumer():
    source = MemorySource()
    put(source, "loop.shared", 10, seconds=0.02)
    with Consumer(source, registry=REG, concurrency=10, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=10, idle_timeout=0.05) == 10
        assert EVENTS == ["open"]
    assert EVENTS == ["open", "close"]
    assert sorted(o.result for o in source.outcomes) == sorted(
        f'{{"n":{n},"attempt":1}}' for n in range(1, 11)
    )


def test_stopping_lets_running_jobs_end_and_gives_back_the_rest():
    source = MemorySource()
    ids = put(source, "loop.wait", 12, seconds=0.3)
    stop = threading.Event()
    consumer = Consumer(source, registry=REG, concurrency=4, log_jobs=False)
    threading.Timer(0.1, stop.set).start()
    ran = consumer.run(stop=stop, idle_timeout=0.05)
    consumer.close()
    assert ran == 4  # the ones that had started
    assert [source.outcome(i) is not None for i in ids].count(True) == 4
    assert all(o.ok for o in source.outcomes)
    assert source.pending() == 8  # the rest wait, none lost


def test_running_jobs_past_the_grace_are_given_up_not_lost():
    source = MemorySource()
    ids = put(source, "loop.wait", 3, seconds=5.0)
    stop = threading.Event()
    consumer = Consumer(source, registry=REG, concurrency=4, log_jobs=False)
    threading.Timer(0.2, stop.set).start()
    consumer.run(stop=stop, idle_timeout=0.05, grace=0.2)
    consumer.close()
    assert source.outcomes == []  # cancelled: no outcome of their own
    assert source.pending() == 3  # back to wait for another consumer
    assert GAUGE.finished == []
    assert [source.outcome(i) for i in ids] == [None, None, None]


def test_bad_concurrency_is_refused():
    for bad in (0, -1, 1.5, True, "8"):
        with pytest.raises(ValueError, match="concurrency must be an integer >= 1"):
            Consumer(MemorySource(), registry=REG, concurrency=bad)  # type: ignore[arg-type]


def test_max_jobs_counts_jobs_started_and_waits_for_them():
    source = MemorySource()
    put(source, "loop.wait", 10, seconds=0.05)
    with Consumer(source, registry=REG, concurrency=4, log_jobs=False) as consumer:
        assert consumer.run(max_jobs=6, idle_timeout=0.05) == 6
    assert len(source.outcomes) == 6
    assert source.pending() == 4


def test_the_consumer_registers_and_retires_and_renews_nothing_without_limiters():
    source = MemorySource()
    put(source, "loop.wait", 3)
    with Consumer(source, registry=REG, concurrency=2, log_jobs=False) as consumer:
        consumer.run(max_jobs=3, idle_timeout=0.05)
        assert consumer.processed == 3
        assert source.announced
    assert source.retired
    assert source.renewed == []
