"""The Celery side of benchmarks/workflows.py, run with benchmarks/celery-env's interpreter:
the same two tasks (add, total), Redis as broker and result backend.

    python workflows_celery.py chain STEPS REPS     # a chain of STEPS adds, REPS times
    python workflows_celery.py chord N REPS         # a chord of N adds, then total
    celery -A workflows_celery worker ...           # the worker

Prints one JSON line per measurement: {"kind": ..., "seconds": ...}.
"""

from __future__ import annotations

import json
import os
import sys
import time

from celery import Celery, chain, chord

URL = os.environ.get("WFBENCH_REDIS_URL", "redis://127.0.0.1:6432/1")
app = Celery("workflows_celery", broker=URL, backend=URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=4,
    task_acks_late=True,  # like Switchyard: a job a crash interrupts runs again
    broker_connection_retry_on_startup=True,
    result_expires=3600,
)


@app.task
def add(x: int) -> int:
    return x + 1


@app.task
def total(results: list[int]) -> int:
    return sum(results)


def main() -> None:
    kind, size, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for _ in range(reps):
        began = time.perf_counter()
        if kind == "chain":
            result = chain(add.s(0), *[add.s() for _ in range(size - 1)])()
            value = result.get(timeout=600)
            assert value == size, value
        else:
            result = chord(add.s(i) for i in range(size))(total.s())
            value = result.get(timeout=600)
            assert value == sum(i + 1 for i in range(size)), value
        print(json.dumps({"kind": kind, "seconds": time.perf_counter() - began}), flush=True)


if __name__ == "__main__":
    main()
