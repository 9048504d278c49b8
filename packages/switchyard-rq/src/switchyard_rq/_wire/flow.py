"""Flow control on the wire: what a job carries (``sy_flow``) and the Lua that enforces it.

A job of an action whose policy sets ``concurrency``, ``rate`` or ``breaker`` carries its
limiters in its hash as ``sy_flow``, a JSON list of directives written by the producer (who has
the action's policy and the job's input; a worker that has not imported the plugin yet knows
neither):

- ``["c", key, limit, keyed]``: at most ``limit`` jobs hold a lease in the sorted set ``key``
  (member ``<id>:<execution>``, scored by when the lease lapses unless its worker renews it);
  ``keyed`` is 1 for a limit per key value (those are not in the queue's ``limits`` listing,
  :func:`~switchyard_rq._wire.keys.flow_registry`);
- ``["r", key, interval, burst]``: job starts spaced ``interval`` seconds apart, bursts of up to
  ``burst`` (GCRA: ``key`` holds the theoretical arrival time of the next start);
- ``["b", key, failures, ratio, min_calls, window, cooldown]``: a circuit breaker (hash ``key``:
  ``state`` open or half, ``until``, ``probe``; failures in the sorted set ``key:f``, calls in
  ``key:n`` when a ratio is set).

The dequeue (STEP) admits a job only if every limiter lets it start; otherwise the job is
deferred, never failed, retried or counted as an attempt: a job over a concurrency limit or
behind an open breaker is *parked* (sorted set ``key:parked``, status ``deferred``) until a lease
is released or the breaker lets a probe through; a job over a rate reserves the next free start
and waits in the queue's scheduled registry until then. Every dequeue and outcome reads Redis's
own clock (``TIME``), so workers on many machines share one time line.

Keys are per action, and per value of the action's key field when one is set
(``concurrency_key``/``rate_key``). A value that is not short and plain is hashed.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Final

from switchyard_rq._wire.keys import FLOW_PREFIX

if TYPE_CHECKING:
    from switchyard import ActionPolicy

__all__ = ["LUA_FLOW", "breaker_key", "concurrency_key", "directives", "rate_key"]

_PLAIN: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.@")
#: a rate-deferred job may start this much before its reserved time (clock skew between the
#: worker that promotes it and Redis's clock must never turn into a loop of re-deferrals)
EARLY: Final = 0.005


def suffix(value: object) -> str:
    """A key part for ``value``: itself when short and plain, else a hash of it."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if 0 < len(text) <= 64 and set(text) <= _PLAIN:
        return text
    return "#" + hashlib.sha1(text.encode()).hexdigest()[:20]


def _scoped(scope: str) -> str:
    return f"{scope}:" if scope else ""


def concurrency_key(action: str, key_value: object = None, scope: str = "") -> str:
    """The lease set of ``action``'s concurrency limit (per value of its key field, when one is
    set); ``scope``: on a cluster the job's queue (wire name: the limit then holds per queue)."""
    base = f"{FLOW_PREFIX}c:{_scoped(scope)}{action}"
    return base if key_value is None else f"{base}:{suffix(key_value)}"


def rate_key(action: str, key_value: object = None, scope: str = "") -> str:
    base = f"{FLOW_PREFIX}r:{_scoped(scope)}{action}"
    return base if key_value is None else f"{base}:{suffix(key_value)}"


def breaker_key(action: str, scope: str = "") -> str:
    return f"{FLOW_PREFIX}b:{_scoped(scope)}{action}"


def _field(data: Any, path: str) -> object:
    value = data
    for part in path.split("."):
        value = getattr(value, part)
    return value


def directives(action: str, policy: ActionPolicy, data: Any, scope: str = "") -> str | None:
    """The ``sy_flow`` value of a job of ``action`` with validated input ``data`` (the input
    model), or None when the policy sets no limiter. ``scope``: on a cluster, the job's queue
    (its wire name): the limiters' keys then live in its slot, and hold per queue."""
    if not policy.flow_controlled:
        return None
    found: list[list[Any]] = []
    if policy.breaker is not None:
        b = policy.breaker
        found.append(
            [
                "b",
                breaker_key(action, scope),
                b.failures or 0,
                b.ratio or 0,
                b.min_calls,
                b.window,
                b.cooldown,
            ]
        )
    if policy.concurrency is not None:
        value = None if policy.concurrency_key is None else _field(data, policy.concurrency_key)
        keyed = 0 if policy.concurrency_key is None else 1
        found.append(["c", concurrency_key(action, value, scope), policy.concurrency, keyed])
    if policy.rate is not None:
        value = None if policy.rate_key is None else _field(data, policy.rate_key)
        found.append(["r", rate_key(action, value, scope), policy.rate.interval, policy.rate.burst])
    return json.dumps(found, separators=(",", ":"))


#: Lua: admission at dequeue, release at the outcome, the sweep of parked jobs. Needs LUA_KEYS.
LUA_FLOW: Final = """
-- a job of queue q that may not start now waits, parked on the limiter that stopped it
local function park(key, kind, id, jk, now, q)
  redis.call('ZADD', key .. ':parked', now, id)
  redis.call('HSET', flowreg('parked', q), key, kind)
  redis.call('HSET', jk, 'status', 'deferred')
end

-- up to n parked jobs go back to the front of their queues (a limiter's parked jobs are all of
-- queue q on a cluster; on one server a limiter that serves two queues may hold both's: the
-- other queue's listing of it goes at its next sweep)
local function unpark(key, n, q)
  local pk = key .. ':parked'
  if redis.call('EXISTS', pk) == 0 then return end
  local got = redis.call('ZPOPMIN', pk, n)
  for i = 1, #got, 2 do
    local id = got[i]
    local jk = 'rq:job:' .. id
    local g = redis.call('HMGET', jk, 'status', 'origin', 'sy_prio')
    if g[1] == 'deferred' and g[2] then
      redis.call('HSET', jk, 'status', 'queued')
      requeue(id, g[2], g[3], true)
    end
  end
  if redis.call('EXISTS', pk) == 0 then redis.call('HDEL', flowreg('parked', q), key) end
end

local function breaker_open(key, d, now, q)
  redis.call('HSET', key, 'state', 'open', 'until', now + d[7], 'opened_at', now)
  redis.call('HDEL', key, 'probe')
  redis.call('HINCRBY', key, 'opened', 1)
  redis.call('DEL', key .. ':f', key .. ':n')
  redis.call('SADD', flowreg('breakers', q), key)
end

local function breaker_close(key, now, q)
  redis.call('HDEL', key, 'state', 'until', 'probe')
  redis.call('HSET', key, 'closed_at', now)
  unpark(key, 1000, q)
end

-- an outcome under breaker d: verdict 'ok', 'failed' (a failure that counts) or '' (neither)
local function breaker_record(key, d, member, verdict, now, q)
  local st = redis.call('HMGET', key, 'state', 'probe')
  if st[1] then
    if st[1] == 'half' and st[2] == member then
      if verdict == 'ok' then breaker_close(key, now, q)
      elseif verdict == 'failed' then breaker_open(key, d, now, q)
      else redis.call('HSET', key, 'state', 'open', 'until', now) end  -- probe again
    end
    return  -- while open, outcomes of jobs that started before it opened do not count
  end
  if verdict == '' then return end
  local fk, nk, window = key .. ':f', key .. ':n', tonumber(d[6])
  local ms = math.ceil(window * 1000)
  if verdict == 'failed' then
    redis.call('ZADD', fk, now, member)
    redis.call('PEXPIRE', fk, ms)
  end
  local ratio = tonumber(d[4])
  if ratio > 0 then
    redis.call('ZADD', nk, now, member)
    redis.call('PEXPIRE', nk, ms)
  end
  if verdict ~= 'failed' then return end
  redis.call('ZREMRANGEBYSCORE', fk, '-inf', now - window)
  local failed = redis.call('ZCARD', fk)
  local trip = tonumber(d[3]) > 0 and failed >= tonumber(d[3])
  if not trip and ratio > 0 then
    redis.call('ZREMRANGEBYSCORE', nk, '-inf', now - window)
    local calls = redis.call('ZCARD', nk)
    trip = calls >= tonumber(d[5]) and failed / calls >= ratio
  end
  if trip then breaker_open(key, d, now, q) end
end

-- may job id (execution member) start now? nil: yes, its leases are taken; otherwise it was
-- deferred: 'parked' (concurrency or breaker) or the unix time its rate slot comes
local function admit(id, jk, member, flow, rated, now, q, lease)
  for _, d in ipairs(flow) do
    local kind, key = d[1], d[2]
    if kind == 'b' then
      local st = redis.call('HMGET', key, 'state', 'until')
      if st[1] and now < tonumber(st[2]) then park(key, 'b', id, jk, now, q); return 'parked' end
    elseif kind == 'c' then
      local held = redis.call('ZCARD', key)
      if held >= tonumber(d[3]) then  -- full, unless some leases lapsed (dead workers)
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
        held = redis.call('ZCARD', key)
      end
      if held >= tonumber(d[3]) then
        park(key, 'c:' .. d[3], id, jk, now, q)
        return 'parked'
      end
      d[5] = held
    end
  end
  if rated then
    if now + EARLY < tonumber(rated) then
      redis.call('ZADD', 'rq:scheduled:' .. q, rated, id)
      redis.call('HSET', jk, 'status', 'scheduled')
      return tonumber(rated)
    end
    redis.call('HDEL', jk, 'sy_rated')
  else
    for _, d in ipairs(flow) do
      if d[1] == 'r' then
        local interval, burst = tonumber(d[3]), tonumber(d[4])
        local tat = tonumber(redis.call('GET', d[2])) or now
        if tat < now then tat = now end
        local start = tat - (burst - 1) * interval
        redis.call('SET', d[2], string.format('%.6f', tat + interval),
          'PX', math.ceil((tat + interval - now) * 1000) + 1000)
        if start > now + EARLY then
          redis.call('ZADD', 'rq:scheduled:' .. q, start, id)
          redis.call('HSET', jk, 'status', 'scheduled', 'sy_rated', string.format('%.6f', start))
          return start
        end
      end
    end
  end
  for _, d in ipairs(flow) do
    local kind, key = d[1], d[2]
    if kind == 'c' then
      redis.call('ZADD', key, now + lease, member)
      -- listed for top and /metrics when its first lease is taken
      if d[5] == 0 and d[4] ~= 1 then redis.call('HSET', flowreg('limits', q), key, d[3]) end
    elseif kind == 'b' then
      local st = redis.call('HMGET', key, 'state', 'until')
      if st[1] then  -- cooldown over, or the last probe overdue: this job probes
        redis.call('HSET', key, 'state', 'half', 'until', now + d[7], 'probe', member)
      end
    end
  end
  return nil
end

-- a run of a job of queue q is over (or never happened): its leases go, a parked job may come
-- back
local function flow_done(flow, member, verdict, now, q)
  for _, d in ipairs(flow) do
    if d[1] == 'c' then
      if redis.call('ZREM', d[2], member) == 1 then unpark(d[2], 1, q) end
    elseif d[1] == 'b' then
      breaker_record(d[2], d, member, verdict, now, q)
    end
  end
end

-- queue q's parked jobs whose limiter has room again (leases of dead workers lapsed, a cooldown
-- ended); a limiter none of them waits on any more leaves q's listing
local function sweep(now, q)
  local rk = flowreg('parked', q)
  local parked = redis.call('HGETALL', rk)
  for i = 1, #parked, 2 do
    local key, kind = parked[i], parked[i + 1]
    if redis.call('EXISTS', key .. ':parked') == 0 then
      redis.call('HDEL', rk, key)
    elseif kind == 'b' then
      local st = redis.call('HMGET', key, 'state', 'until')
      if not st[1] then unpark(key, 1000, q)
      elseif now >= tonumber(st[2]) then unpark(key, 1, q) end
    else
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
      local free = tonumber(string.sub(kind, 3)) - redis.call('ZCARD', key)
      if free > 0 then unpark(key, free, q) end
    end
  end
end
""".replace("EARLY", repr(EARLY))
