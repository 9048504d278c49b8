"""Flow control at the edge (an HTTP gateway): per-client rates and per-action circuit breakers.

Both live in Redis so that every replica of a gateway shares them, and use the transport's own
designs (``_wire/flow.py``):

- a client's rate is the same GCRA meter as a job's ``rate`` (Redis's clock, a theoretical
  arrival time in one string key), except that a request over the rate is refused with the
  seconds to wait rather than reserving a later start;
- an action's circuit breaker *is* the one its jobs use (key :func:`flow.breaker_key`): the
  gateway admits an in-process call as the dequeue admits a job (open: refused; cooldown over:
  this call is the probe) and records its outcome with the same Lua (``breaker_record``), so
  failures in-process and in workers count towards one breaker, and a probe that succeeds here
  lets the parked jobs go as well.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final, NamedTuple, final

from switchyard_rq._wire.cluster import is_cluster, wire_queue
from switchyard_rq._wire.connection import get_connection, redis_errors
from switchyard_rq._wire.flow import LUA_FLOW, breaker_key, suffix
from switchyard_rq._wire.keys import EDGE_RATE_PREFIX, LUA_KEYS, QUEUES_SET
from switchyard_rq._wire.keys import queue as queue_key
from switchyard_rq._wire.scripts import Script

if TYPE_CHECKING:
    import redis
    from switchyard import Breaker, Rate

__all__ = ["BreakerGate", "breaker_enter", "breaker_exit", "client_rate_wait"]

# KEYS: the client's meter.  ARGV: interval (s), burst.  Returns '0' (admitted: the meter moves
# on) or the seconds until a request would be (the meter does not move).
_RATE: Final = Script(
    LUA_KEYS
    + """
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock()
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allowed = tat + interval - burst * interval
if allowed > now then return string.format('%.6f', allowed - now) end
redis.call('SET', KEYS[1], string.format('%.6f', tat + interval),
  'PX', math.ceil((tat + interval - now) * 1000) + 1000)
return '0'
"""
)

# KEYS: the breaker.  ARGV: member (this call), cooldown (s), 1 to become the probe when the
# cooldown is over.  Returns {state, seconds}: 'closed'; 'open'/'half' and the seconds until a
# probe may run (while that is > 0 the call is refused); 'probe' (this call probes); or the
# state and 0 (cooldown over, not probing: a job's dequeue will probe).
_ENTER: Final = Script(
    LUA_KEYS
    + """
local st = redis.call('HMGET', KEYS[1], 'state', 'until')
if not st[1] then return {'closed', '0'} end
local now = clock()
local left = tonumber(st[2]) - now
if left > 0 then return {st[1], string.format('%.3f', left)} end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'state', 'half', 'until', now + tonumber(ARGV[2]), 'probe', ARGV[1])
  return {'probe', '0'}
end
return {st[1], '0'}
"""
)

# KEYS: the breaker.  ARGV: member, verdict ('ok', 'failed'), the action's queue (wire name),
# failures, ratio, min_calls, window, cooldown: the job directive's fields (flow.directives).
_EXIT: Final = Script(
    LUA_KEYS
    + LUA_FLOW
    + """
local d = {'b', KEYS[1], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]}
breaker_record(KEYS[1], d, ARGV[1], ARGV[2], clock(), ARGV[3])
return 1
"""
)


def client_rate_wait(client: str, rate: Rate, *, connection: redis.Redis | None = None) -> float:
    """Take one request of ``client`` from its ``rate`` (shared by every gateway on this Redis):
    0.0 when admitted, else the seconds until a request would be (nothing is taken)."""
    conn = connection or get_connection()
    with redis_errors(conn):
        answer = _RATE(conn, [EDGE_RATE_PREFIX + suffix(client)], [rate.interval, rate.burst])
    return float(answer)


@final
class BreakerGate(NamedTuple):
    """What :func:`breaker_enter` found: ``state`` closed, open, half or probe (this call is
    the probe); ``wait`` seconds until a probe may run (> 0: refuse the call); ``member`` the
    call's id in the breaker's window; ``key`` and ``queue`` for :func:`breaker_exit`."""

    state: str
    wait: float
    member: str
    key: str
    queue: str


def _key(action: str, queue: str, conn: redis.Redis) -> tuple[str, str]:
    cluster = is_cluster(conn)
    wire = wire_queue(queue, cluster)
    return breaker_key(action, wire if cluster else ""), wire


def breaker_enter(
    action: str,
    breaker: Breaker,
    *,
    queue: str,
    probe: bool = True,
    connection: redis.Redis | None = None,
) -> BreakerGate:
    """Whether a call of ``action`` (routed to ``queue``) may run now under its breaker, the one
    its jobs share. ``probe``: when the cooldown is over, this call becomes the probe (an
    in-process call); False for a call that only schedules a job (a worker will probe)."""
    conn = connection or get_connection()
    key, wire = _key(action, queue, conn)
    member = "edge:" + os.urandom(8).hex()
    with redis_errors(conn):
        state, wait = _ENTER(conn, [key], [member, breaker.cooldown, 1 if probe else 0])
    text = state.decode() if isinstance(state, bytes) else str(state)
    return BreakerGate(text, float(wait), member, key, wire)


def breaker_exit(
    gate: BreakerGate,
    breaker: Breaker,
    *,
    ok: bool | None,
    connection: redis.Redis | None = None,
) -> None:
    """Record the outcome of a call :func:`breaker_enter` let through: ``ok`` True, False for a
    failure that counts (the handler raised or timed out), None for neither (invalid input: a
    probe that ends so lets the next call probe at once). A success costs a round trip only when
    it closes the breaker (the probe's) or a ratio counts calls."""
    if ok is None and gate.state != "probe":
        return
    if ok and gate.state != "probe" and breaker.ratio is None:
        return
    conn = connection or get_connection()
    with redis_errors(conn):
        if ok is False:  # a breaker that opens is listed under its queue: RQ must know the queue
            conn.sadd(QUEUES_SET, queue_key(gate.queue))
        _EXIT(
            conn,
            [gate.key],
            [
                gate.member,
                {True: "ok", False: "failed", None: ""}[ok],
                gate.queue,
                breaker.failures or 0,
                breaker.ratio or 0,
                breaker.min_calls,
                breaker.window,
                breaker.cooldown,
            ],
        )
