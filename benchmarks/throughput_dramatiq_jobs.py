"""The trivial jobs of the Dramatiq baseline (c): 45 actors on one queue, no retries.

The broker URL comes from ``THROUGHPUT_REDIS_URL``; ``dramatiq throughput_dramatiq_jobs`` loads
this module in each worker process. With ``THROUGHPUT_DRAMATIQ_RESULTS=1`` (benchmarks/results.py)
the actors keep their results: the Results middleware with a Redis backend on the same server.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

ACTIONS = 45

URL = os.environ.get("THROUGHPUT_REDIS_URL", "redis://127.0.0.1:6430/0")
RESULTS = os.environ.get("THROUGHPUT_DRAMATIQ_RESULTS") == "1"

broker = RedisBroker(url=URL)
if RESULTS:
    broker.add_middleware(Results(backend=RedisBackend(url=URL), store_results=True))
dramatiq.set_broker(broker)


def _make(index: int) -> Callable[[int], int]:
    def job(n: int) -> int:
        return n + 1

    job.__name__ = job.__qualname__ = f"job_{index:02d}"
    return job


_OPTIONS = {"store_results": True} if RESULTS else {}  # an option only the middleware knows
ACTORS = [
    dramatiq.actor(
        _make(i), actor_name=f"job_{i:02d}", queue_name="default", max_retries=0, **_OPTIONS
    )
    for i in range(ACTIONS)
]
