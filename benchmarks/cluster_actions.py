"""The I/O-bound jobs of benchmarks/cluster.py: ``io.wait_a`` .. ``io.wait_c``, each an async
handler that awaits 20 ms (as ``io.wait`` of concurrency_actions.py), one per queue (routing
sends each action to one queue, so three actions spread the jobs over three queues).
Registered there as entry points."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel
from switchyard import Action, define

DELAY = 0.02  # what each job waits
NAMES = ("io.wait_a", "io.wait_b", "io.wait_c")


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int


async def _wait(data: In) -> Out:
    await asyncio.sleep(DELAY)
    return Out(n=data.n)


def _make(name: str) -> Action:
    return define(name).description("awaits 20 ms").input(In).output(Out).handler(_wait).build()


wait_a, wait_b, wait_c = (_make(name) for name in NAMES)
ATTRS = {"io.wait_a": "wait_a", "io.wait_b": "wait_b", "io.wait_c": "wait_c"}
