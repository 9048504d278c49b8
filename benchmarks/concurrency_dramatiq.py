"""The Dramatiq baseline of benchmarks/concurrency.py: ``dramatiq concurrency_dramatiq -p 2 -t 8``.

Dramatiq runs sync actors in threads: a job that waits on I/O holds its thread (as a Switchyard
``io_bound`` action does). Results are kept (the Results middleware), as the other systems keep
theirs.
"""

from __future__ import annotations

import os
import time

import dramatiq
import urllib3
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

DELAY = 0.02
HTTP_URL = os.environ.get("CONCURRENCY_HTTP_URL", "http://127.0.0.1:6433/")
REDIS_URL = os.environ.get("CONCURRENCY_REDIS_URL", "redis://127.0.0.1:6432/0")

broker = RedisBroker(url=REDIS_URL)
backend = RedisBackend(url=REDIS_URL)
broker.add_middleware(Results(backend=backend, store_results=True))
dramatiq.set_broker(broker)
_http = urllib3.PoolManager(maxsize=64)  # thread-safe, shared by the process's threads


@dramatiq.actor(queue_name="default", max_retries=0, store_results=True)
def wait(n: int) -> int:
    time.sleep(DELAY)
    return n


@dramatiq.actor(queue_name="default", max_retries=0, store_results=True)
def echo(n: int) -> int:
    return n + 1


@dramatiq.actor(queue_name="default", max_retries=0, store_results=True)
def fetch(n: int) -> int:
    _http.request("GET", HTTP_URL).data  # noqa: B018 - read the body
    return n
