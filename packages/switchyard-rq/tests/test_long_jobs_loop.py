"""Cancellation and progress in the job loop, without Redis (MemorySource): the heartbeat
thread watches the jobs that run for a while, stores their progress and tells them to stop."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from pydantic import BaseModel
from switchyard import Context, action, call_action
from switchyard.testing import make_registry

from switchyard_rq import Consumer
from switchyard_rq.testing import MemorySource


class Work(BaseModel):
    steps: int = 100


class Done(BaseModel):
    done: int


@action("long.looks")
def looks(data: Work, ctx: Context) -> Done:
    for n in range(data.steps):
        ctx.progress(n + 1, data.steps, f"step {n + 1}")
        if ctx.cancelled:
            return Done(done=n)  # stops early, cleanly: ends as it returned
        time.sleep(0.02)
    return Done(done=data.steps)


@action("long.raises", retries=3)
def raises(data: Work, ctx: Context) -> Done:
    for _ in range(data.steps):
        ctx.raise_if_cancelled()
        time.sleep(0.02)
    return Done(done=data.steps)


@action("long.awaits", retries=3)
async def awaits(data: Work) -> Done:
    await asyncio.sleep(data.steps)
    return Done(done=data.steps)


REG = make_registry(looks, raises, awaits)


def serve(source: MemorySource, jobs: int) -> threading.Thread:
    def run() -> None:
        with Consumer(source, registry=REG, concurrency=2, log_jobs=False) as consumer:
            consumer.run(max_jobs=jobs, idle_timeout=0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("name", ["long.raises", "long.awaits"])
def test_a_running_job_asked_to_stop_ends_canceled_not_retried(name):
    source = MemorySource()
    job_id = source.put(name, {"steps": 500}, registry=REG)
    thread = serve(source, 1)
    time.sleep(0.7)  # running for longer than the watch's half second
    source.cancel(job_id)
    thread.join(10)
    assert not thread.is_alive()
    outcome = source.outcome(job_id)
    assert outcome is not None
    assert outcome.mode == "cancel"
    assert outcome.error.type == "JobCancelledError"
    assert len(source.outcomes) == 1  # not retried


def test_a_handler_that_looks_reports_progress_and_may_return_early():
    source = MemorySource()
    job_id = source.put("long.looks", {"steps": 500}, registry=REG)
    thread = serve(source, 1)
    wait_for(lambda: job_id in source.progress)  # stored while it runs
    seen = json.loads(source.progress[job_id])
    assert seen["total"] == 500
    assert seen["message"] == f"step {seen['done']}"
    source.cancel(job_id)
    thread.join(10)
    outcome = source.outcome(job_id)
    assert outcome.mode == "ok"  # it returned: its output stands
    assert 0 < source.result(job_id)["done"] < 500
    last = json.loads(outcome.progress)  # the last report, with the outcome
    assert last["done"] >= seen["done"]


def test_a_short_job_costs_no_watch():
    source = MemorySource()
    job_id = source.put("long.looks", {"steps": 2}, registry=REG)
    serve(source, 1).join(10)
    assert source.outcome(job_id).mode == "ok"
    assert json.loads(source.outcome(job_id).progress)["done"] == 2
    assert source.watched == []  # it ended before the watch looked at it


def test_in_process_the_context_is_never_cancelled_and_progress_is_checked():
    assert call_action("long.looks", {"steps": 2}, registry=REG).done == 2
    ctx = Context(action="long.looks", call_id="x", attempt=1, logger=None)  # type: ignore[arg-type]
    assert ctx.cancelled is False
    ctx.raise_if_cancelled()
    ctx.progress(1, 2, "fine")
    for bad, message in [
        ((-1,), "done must be a number >= 0"),
        ((True,), "done must be a number >= 0"),
        ((1, 0), "total must be a number > 0 or None"),
        ((1, 2, 3), "message must be a string or None"),
    ]:
        with pytest.raises(ValueError, match=message):
            ctx.progress(*bad)
