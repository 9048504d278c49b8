"""The autoscaler: a pure function from what the supervisor observed to how many processes to run.

Nothing here touches Redis, processes or clocks, so every decision is a unit test. The
supervisor calls :func:`decide` once per tick with the previous :class:`ScaleState` and a fresh
:class:`Observation`, applies ``decision.target`` and keeps ``decision.state`` for the next tick.

Hysteresis: the pool grows fast (doubling, after ``up_ticks`` consecutive busy ticks) and shrinks
slowly (one process at a time, after ``down_ticks`` consecutive idle ticks); any tick that is
neither busy nor idle resets both counters, so a pool near a threshold does not flap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Final, final

__all__ = ["Decision", "Observation", "ScalePolicy", "ScaleState", "decide"]


@final
@dataclass(frozen=True, slots=True)
class ScalePolicy:
    """When to grow and shrink the pool; the worker builds it from its settings."""

    min_processes: int = 1
    max_processes: int = 2
    #: waiting jobs per running process above which a tick counts as busy
    backlog_per_process: int = 20
    #: age in seconds of the oldest waiting job above which a tick counts as busy
    max_wait: float = 1.0
    #: consecutive busy ticks before growing
    up_ticks: int = 2
    #: consecutive idle ticks (no waiting job) before shrinking by one
    down_ticks: int = 30

    def __post_init__(self) -> None:
        if self.min_processes < 1:
            raise ValueError(f"min_processes must be >= 1, got {self.min_processes}")
        if self.max_processes < self.min_processes:
            raise ValueError(
                f"max_processes ({self.max_processes}) must be >= "
                f"min_processes ({self.min_processes})"
            )
        if self.up_ticks < 1 or self.down_ticks < 1:
            raise ValueError("up_ticks and down_ticks must be >= 1")


@final
@dataclass(frozen=True, slots=True)
class Observation:
    """One tick's view: waiting jobs over the served queues and the pool's current size."""

    depth: int
    #: seconds the oldest waiting job has waited (0.0 when nothing waits)
    oldest_age: float
    processes: int


@final
@dataclass(frozen=True, slots=True)
class ScaleState:
    """Counters carried from tick to tick."""

    busy_ticks: int = 0
    idle_ticks: int = 0


@final
@dataclass(frozen=True, slots=True)
class Decision:
    """The process count to run now, why, and the state for the next tick."""

    target: int
    reason: str
    state: ScaleState = field(default_factory=ScaleState)


_STEADY: Final = "steady"


def decide(policy: ScalePolicy, state: ScaleState, obs: Observation) -> Decision:
    """Return how many processes to run after observing ``obs``.

    The target is always within ``[policy.min_processes, policy.max_processes]``; a pool outside
    those bounds (at start, or after a crash) is brought back into them at once.
    """
    current = obs.processes
    if current < policy.min_processes:
        return Decision(policy.min_processes, "below minimum", ScaleState())
    if current > policy.max_processes:
        return Decision(policy.max_processes, "above maximum", ScaleState())

    busy = (
        obs.depth > policy.backlog_per_process * max(current, 1) or obs.oldest_age > policy.max_wait
    )
    idle = obs.depth == 0
    if busy:
        state = replace(state, busy_ticks=state.busy_ticks + 1, idle_ticks=0)
        if state.busy_ticks >= policy.up_ticks and current < policy.max_processes:
            wanted = max(current * 2, math.ceil(obs.depth / policy.backlog_per_process))
            target = min(policy.max_processes, max(wanted, current + 1))
            reason = f"backlog {obs.depth} jobs, oldest waiting {obs.oldest_age:.1f}s"
            return Decision(target, reason, ScaleState())
        return Decision(current, _STEADY, state)
    if idle:
        state = replace(state, idle_ticks=state.idle_ticks + 1, busy_ticks=0)
        if state.idle_ticks >= policy.down_ticks and current > policy.min_processes:
            return Decision(current - 1, f"idle for {state.idle_ticks} ticks", ScaleState())
        return Decision(current, _STEADY, state)
    return Decision(current, _STEADY, ScaleState())
