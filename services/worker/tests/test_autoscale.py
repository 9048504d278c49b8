"""The autoscaler's decisions, as a pure function of what it observed."""

from __future__ import annotations

import pytest
from switchyard_worker import Observation, ScalePolicy, ScaleState, decide

POLICY = ScalePolicy(
    min_processes=1, max_processes=8, backlog_per_process=10, max_wait=1.0, up_ticks=2, down_ticks=3
)


def run(policy, observations):
    """Feed observations tick by tick, applying each target as the next tick's pool size."""
    state, targets = ScaleState(), []
    processes = observations[0][2] if len(observations[0]) > 2 else policy.min_processes
    for obs in observations:
        depth, age = obs[0], obs[1]
        decision = decide(policy, state, Observation(depth, age, processes))
        state, processes = decision.state, decision.target
        targets.append(processes)
    return targets


def test_a_backlog_grows_the_pool_only_after_up_ticks_busy_ticks():
    assert run(POLICY, [(50, 0.0), (50, 0.0), (50, 0.0)]) == [1, 5, 5]


def test_growth_doubles_at_least_and_is_capped_by_max():
    decision = decide(POLICY, ScaleState(busy_ticks=1), Observation(25, 0.0, 2))
    assert decision.target == 4
    capped = decide(POLICY, ScaleState(busy_ticks=1), Observation(10_000, 0.0, 6))
    assert capped.target == 8


def test_old_jobs_alone_grow_the_pool():
    # few jobs, but the oldest has waited longer than max_wait: the pool is too small or stuck
    assert run(POLICY, [(3, 2.5), (3, 2.5)]) == [1, 2]


def test_a_single_busy_tick_between_quiet_ones_changes_nothing():
    assert run(POLICY, [(50, 0.0), (5, 0.1), (50, 0.0), (5, 0.1), (50, 0.0)]) == [1] * 5


def test_shrinks_by_one_after_sustained_idle_and_never_below_min():
    targets = run(POLICY, [(0, 0.0, 4)] * 12)
    assert targets == [4, 4, 3, 3, 3, 2, 2, 2, 1, 1, 1, 1]


def test_any_waiting_job_interrupts_the_idle_countdown():
    targets = run(POLICY, [(0, 0.0, 3), (0, 0.0), (2, 0.1), (0, 0.0), (0, 0.0), (0, 0.0)])
    assert targets == [3, 3, 3, 3, 3, 2]


def test_a_pool_outside_its_bounds_is_corrected_at_once():
    assert decide(POLICY, ScaleState(), Observation(0, 0.0, 0)).target == 1
    assert decide(POLICY, ScaleState(), Observation(0, 0.0, 12)).target == 8


def test_the_pool_at_max_stays_there_under_load_and_says_why_when_it_grows():
    assert run(POLICY, [(10_000, 30.0, 8)] * 4) == [8, 8, 8, 8]
    grow = decide(POLICY, ScaleState(busy_ticks=1), Observation(100, 3.0, 1))
    assert "backlog 100 jobs" in grow.reason
    assert "3.0s" in grow.reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_processes": 0}, "min_processes must be >= 1"),
        ({"min_processes": 4, "max_processes": 2}, "must be >= min_processes"),
        ({"up_ticks": 0}, "up_ticks"),
    ],
)
def test_bad_policies_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScalePolicy(**kwargs)


def test_the_tuning_example_in_the_workers_guide_holds():
    from pathlib import Path

    guide = Path(__file__).resolve().parents[3] / "docs" / "workers.md"
    blocks = [b.split("```", 1)[0] for b in guide.read_text().split("```python\n")[1:]]
    (block,) = [b for b in blocks if "ScalePolicy" in b]  # the tuning example
    assert block.count("assert ") >= 2  # it checks what it claims, so running it tests that
    exec(compile(block, str(guide), "exec"), {})
