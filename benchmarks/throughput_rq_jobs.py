"""The trivial jobs of the RQ baselines (a) and (b): 45 functions ``job_00`` .. ``job_44``.

Each returns its argument plus one, so that a job's whole cost is the queue's own machinery.
"""

from __future__ import annotations

from collections.abc import Callable

ACTIONS = 45


def _make(index: int) -> Callable[[int], int]:
    def job(n: int) -> int:
        return n + 1

    job.__name__ = job.__qualname__ = f"job_{index:02d}"
    return job


for _i in range(ACTIONS):
    globals()[f"job_{_i:02d}"] = _make(_i)
