"""The trivial jobs of the Switchyard system (d): 45 actions ``bench.job_00`` .. ``bench.job_44``.

Real Switchyard actions with pydantic input and output models; benchmarks/throughput.py
registers them as entry points (a generated ``.dist-info``) so the worker finds them in metadata.
"""

from __future__ import annotations

from pydantic import BaseModel
from switchyard import Action, define

ACTIONS = 45


class JobIn(BaseModel):
    n: int


class JobOut(BaseModel):
    n: int


def _handler(data: JobIn) -> JobOut:
    return JobOut(n=data.n + 1)


def _make(index: int) -> Action:
    return (
        define(f"bench.job_{index:02d}")
        .description("a trivial benchmark job")
        .input(JobIn)
        .output(JobOut)
        .handler(_handler)
        .build()
    )


for _i in range(ACTIONS):
    globals()[f"job_{_i:02d}"] = _make(_i)
