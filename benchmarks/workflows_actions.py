"""The actions of benchmarks/workflows.py: ``wfbench.add`` (x -> x + 1) and ``wfbench.total``
(the sum of a group's outputs), registered as entry points by a generated ``.dist-info``."""

from __future__ import annotations

from pydantic import BaseModel
from switchyard import action


class Num(BaseModel):
    x: int


class Nums(BaseModel):
    results: list[Num]


@action("wfbench.add")
def add(data: Num) -> Num:
    return Num(x=data.x + 1)


@action("wfbench.total")
def total(data: Nums) -> Num:
    return Num(x=sum(n.x for n in data.results))
