"""Flow control at the edge (an HTTP gateway's calls): a client's rate and an action's breaker,
shared through Redis with every other gateway and, for the breaker, with the action's jobs."""

from __future__ import annotations

from switchyard import Breaker, Rate

import switchyard_rq


def test_client_rate_refuses_without_moving_the_meter(conn):
    rate = Rate(2, 60.0)  # one start each 30 s, a burst of 1
    assert switchyard_rq.client_rate_wait("svc-a", rate) == 0.0
    wait = switchyard_rq.client_rate_wait("svc-a", rate)
    assert 29.0 < wait <= 30.0
    again = switchyard_rq.client_rate_wait("svc-a", rate)  # refused calls take nothing
    assert 0 < again <= wait
    assert switchyard_rq.client_rate_wait("svc-b", rate) == 0.0  # per client
    assert switchyard_rq.client_rate_wait("a client id with spaces/and slashes", rate) == 0.0
    assert conn.exists("switchyard:edge:rate:svc-a")


def test_client_rate_allows_its_burst(conn):
    rate = Rate(100, 1.0, burst=5)
    waits = [switchyard_rq.client_rate_wait("burst", rate) for _ in range(6)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] > 0


def test_breaker_opens_on_failures_and_a_probe_closes_it(conn):
    breaker = Breaker(failures=2, window=60, cooldown=30)
    for _ in range(2):
        gate = switchyard_rq.breaker_enter("edge.act", breaker, queue="default")
        assert (gate.state, gate.wait) == ("closed", 0.0)
        switchyard_rq.breaker_exit(gate, breaker, ok=False)
    gate = switchyard_rq.breaker_enter("edge.act", breaker, queue="default")
    assert gate.state == "open"
    assert 29 < gate.wait <= 30
    states = {s.name: s for s in switchyard_rq.flow_stats(conn)}
    assert states["edge.act"].state == "open"  # listed for top and the dashboard
    conn.hset("switchyard:flow:b:edge.act", "until", 0)  # the cooldown is over
    scheduled = switchyard_rq.breaker_enter("edge.act", breaker, queue="default", probe=False)
    assert (scheduled.state, scheduled.wait) == ("open", 0.0)  # a job will probe, not this
    probe = switchyard_rq.breaker_enter("edge.act", breaker, queue="default")
    assert probe.state == "probe"
    other = switchyard_rq.breaker_enter("edge.act", breaker, queue="default")
    assert other.state == "half"
    assert other.wait > 0  # refused while the probe runs
    switchyard_rq.breaker_exit(probe, breaker, ok=True)
    assert switchyard_rq.breaker_enter("edge.act", breaker, queue="default").state == "closed"


def test_successes_cost_no_round_trip_without_a_ratio(conn):
    breaker = Breaker(failures=3)
    gate = switchyard_rq.breaker_enter("edge.quiet", breaker, queue="default")
    conn.config_resetstat()
    switchyard_rq.breaker_exit(gate, breaker, ok=True)
    switchyard_rq.breaker_exit(gate, breaker, ok=None)
    assert "cmdstat_evalsha" not in conn.info("commandstats")
