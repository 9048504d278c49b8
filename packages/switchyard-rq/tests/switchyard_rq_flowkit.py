"""Actions under flow control for test_flow.py and its child process (flow_child.py)."""

from __future__ import annotations

import asyncio
import threading
import time

from pydantic import BaseModel
from switchyard import Context, action
from switchyard.testing import make_registry


class Work(BaseModel):
    n: int = 0
    tenant: str = "a"
    seconds: float = 0.0
    fail: bool = False


class Done(BaseModel):
    n: int
    attempt: int


class Spans:
    """Each run's start and end (the handlers' own records), and the most at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[float, int, str]] = []

    def record(self, delta: int, key: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), delta, key))

    def peak(self, key: str | None = None) -> int:
        now = peak = 0
        for _, delta, k in sorted(self.events):
            if key is None or k == key:
                now += delta
                peak = max(peak, now)
        return peak

    def starts(self) -> list[float]:
        return sorted(t for t, delta, _ in self.events if delta > 0)


SPANS = Spans()
ORDER: list[int] = []


def reset() -> None:
    SPANS.events.clear()
    ORDER.clear()
    RUNS.clear()


@action("flow.limited", concurrency=2)
async def limited(data: Work, ctx: Context) -> Done:
    SPANS.record(+1, "all")
    await asyncio.sleep(data.seconds)
    SPANS.record(-1, "all")
    return Done(n=data.n, attempt=ctx.attempt)


@action("flow.per_tenant", concurrency=1, concurrency_key="tenant")
async def per_tenant(data: Work, ctx: Context) -> Done:
    SPANS.record(+1, data.tenant)
    await asyncio.sleep(data.seconds)
    SPANS.record(-1, data.tenant)
    return Done(n=data.n, attempt=ctx.attempt)


@action("flow.rated", rate="20/s")
def rated(data: Work, ctx: Context) -> Done:
    SPANS.record(+1, "rated")
    return Done(n=data.n, attempt=ctx.attempt)


@action("flow.guarded", breaker={"failures": 3, "window": "60s", "cooldown": "1s"}, retries=0)
def guarded(data: Work, ctx: Context) -> Done:
    SPANS.record(+1, "guarded")
    if data.fail:
        raise ConnectionError("the service is down")
    return Done(n=data.n, attempt=ctx.attempt)


RUNS: dict[int, int] = {}


@action("flow.counted")
async def counted(data: Work) -> Done:
    RUNS[data.n] = RUNS.get(data.n, 0) + 1
    await asyncio.sleep(data.seconds)
    return Done(n=data.n, attempt=1)


@action("flow.ordered")
def ordered(data: Work) -> Done:
    ORDER.append(data.n)
    return Done(n=data.n, attempt=1)


REG = make_registry(limited, per_tenant, rated, guarded, ordered, counted)
