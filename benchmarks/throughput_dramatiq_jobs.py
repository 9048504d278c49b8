"""The trivial jobs of the Dramatiq baseline (c): 45 actors on one queue, no retries.

The broker URL comes from ``THROUGHPUT_REDIS_URL``; ``dramatiq throughput_dramatiq_jobs`` loads
this module in each worker process.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker

ACTIONS = 45

broker = RedisBroker(url=os.environ.get("THROUGHPUT_REDIS_URL", "redis://127.0.0.1:6430/0"))
dramatiq.set_broker(broker)


def _make(index: int) -> Callable[[int], int]:
    def job(n: int) -> int:
        return n + 1

    job.__name__ = job.__qualname__ = f"job_{index:02d}"
    return job


ACTORS = [
    dramatiq.actor(_make(i), actor_name=f"job_{i:02d}", queue_name="default", max_retries=0)
    for i in range(ACTIONS)
]
