"""ActionPolicy: every per-action option, parsed and checked once, frozen, round-tripped."""

from __future__ import annotations

import pickle

import pytest
from switchyard import ActionPolicy, Breaker, Rate
from switchyard._policy import OPTIONS, parse_duration


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("100/s", 100, 1.0), ("5000/min", 5000, 60.0), ("10/30s", 10, 30.0), ("3/h", 3, 3600.0),
     ("7/2m", 7, 120.0), ("1/0.5s", 1, 0.5)],
)  # fmt: skip
def test_rate_parses_text(text, count, period):
    rate = Rate.parse(text)
    assert (rate.count, rate.period) == (count, period)
    assert rate.interval == pytest.approx(period / count)
    assert 1 <= rate.burst <= count


@pytest.mark.parametrize(
    "text", ["", "100", "/s", "x/s", "10/", "10/parsec", "-1/s", "0/s", "1/0s"]
)
def test_rate_refuses_bad_text(text):
    with pytest.raises(ValueError, match="must be"):
        Rate.parse(text)


def test_rate_burst_is_bounded():
    assert Rate(100, 1.0).burst == 10
    assert Rate(3, 1.0).burst == 1
    assert Rate(10, 1.0, burst=10).burst == 10
    with pytest.raises(ValueError, match="burst must be an integer from 1 to 10"):
        Rate(10, 1.0, burst=11)


def test_breaker_forms():
    assert ActionPolicy(breaker=True).breaker == Breaker()
    assert ActionPolicy(breaker=7).breaker == Breaker(failures=7)
    by_map = ActionPolicy(breaker={"ratio": 0.5, "min_calls": 20, "cooldown": "1m"}).breaker
    assert by_map is not None
    assert (by_map.ratio, by_map.min_calls, by_map.cooldown) == (0.5, 20, 60.0)
    with pytest.raises(ValueError, match="breaker has no field 'cooldwn'"):
        ActionPolicy(breaker={"cooldwn": 5})
    with pytest.raises(ValueError, match="ratio must be a number in"):
        Breaker(ratio=1.5)


@pytest.mark.parametrize(
    ("text", "seconds"), [(5, 5.0), (0.25, 0.25), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0),
                          ("150ms", 0.15), ("1.5s", 1.5)]
)  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_defaults_come_from_the_table():
    policy = ActionPolicy()
    assert dict(policy.items()) == {name: option.default for name, option in OPTIONS.items()}
    assert not policy.flow_controlled
    assert ActionPolicy(rate="1/s").flow_controlled


def test_policy_is_frozen_hashable_and_round_trips():
    policy = ActionPolicy(queue="mail", retries=2, rate="100/s", breaker=3, concurrency=4,
                          priority="low", timeout="30s")  # fmt: skip
    with pytest.raises(AttributeError, match="frozen"):
        policy.retries = 1  # type: ignore[misc]
    assert hash(policy) == hash(ActionPolicy(**dict(policy.items())))
    assert ActionPolicy.from_json(policy.to_json()) == policy
    assert pickle.loads(pickle.dumps(policy)) == policy
    assert policy.replace(retries=5).retries == 5
    assert policy.retries == 2
    assert "retries=2" in repr(policy)
    with pytest.raises(ValueError, match="unknown option 'x'"):
        ActionPolicy.from_json({"x": 1})


def test_replace_checks_like_the_constructor():
    with pytest.raises(ValueError, match="retries must be"):
        ActionPolicy().replace(retries=-2)
