"""The producer's and the operator's Lua scripts: a keyed schedule, cancel, requeue."""

from __future__ import annotations

from typing import Final

from switchyard_rq._wire.keys import DONE_CHANNEL, LUA_KEYS
from switchyard_rq._wire.scripts import Script

__all__ = ["CANCEL", "KEYED", "REQUEUE", "SCHEDULE_KEYED"]

# A keyed schedule as a Lua function (SCHEDULE_KEYED's body; the scheduler's FIRE runs it after
# its fencing check).  K: idempotency key, job hash, queue list (of the job's priority) or
# scheduled zset, doorbell (all in the queue's slot: the caller registers the queue in
# rq:queues).  A: job id, key TTL, 'queue'|'schedule', score, then the hash's field/value pairs.
# Returns the id of the pending, running or finished job holding the key, else creates this one.
KEYED: Final = """
local function keyed(K, A)
  local existing = redis.call('GET', K[1])
  if existing then
    local st = redis.call('HGET', 'rq:job:' .. existing, 'status')
    if st == 'queued' or st == 'scheduled' or st == 'started' or st == 'finished'
        or st == 'deferred' then
      return existing
    end
  end
  redis.call('HSET', K[2], unpack(A, 5))
  if A[3] == 'schedule' then
    redis.call('ZADD', K[3], A[4], A[1])
  else
    redis.call('RPUSH', K[3], A[1])
    redis.call('RPUSH', K[4], '1')
  end
  redis.call('SET', K[1], A[1], 'EX', A[2])
  return A[1]
end
"""

# KEYS and ARGV: as ``keyed``'s K and A above.
SCHEDULE_KEYED: Final = Script(KEYED + "return keyed(KEYS, ARGV)\n")

# KEYS: job hash.  ARGV: job id, now (RQ format), now (unix seconds).
# 1: canceled (was queued, scheduled or deferred by flow control), 0: already running or done,
# -1: no such job.
CANCEL: Final = Script(
    LUA_KEYS
    + """
local f = redis.call('HMGET', KEYS[1], 'status', 'origin', 'failure_ttl', 'sy_prio', 'sy_flow')
if not f[1] then return -1 end
if f[1] == 'queued' or f[1] == 'scheduled' or f[1] == 'deferred' then
  local q = f[2] or ''
  redis.call('LREM', qkey(q, f[4]), 0, ARGV[1])
  redis.call('ZREM', 'rq:scheduled:' .. q, ARGV[1])
  if f[5] then  -- parked by a limiter
    for _, d in ipairs(cjson.decode(f[5])) do
      redis.call('ZREM', d[2] .. ':parked', ARGV[1])
    end
  end
  redis.call('HSET', KEYS[1], 'status', 'canceled', 'ended_at', ARGV[2])
  redis.call('PUBLISH', 'DONE_CHANNEL' .. ARGV[1], 'canceled')
  local ttl = tonumber(f[3]) or 604800
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('ZADD', 'rq:canceled:' .. q, tonumber(ARGV[3]) + ttl, ARGV[1])
  else
    redis.call('ZADD', 'rq:canceled:' .. q, '+inf', ARGV[1])
  end
  return 1
end
return 0
""".replace("DONE_CHANNEL", DONE_CHANNEL)
)

# KEYS: job hash.  ARGV: job id, now (RQ format).  Puts a failed (or canceled) job back on its
# queue, as `rq requeue` does.  1: requeued, 0: not failed, -1: no such job.
REQUEUE: Final = Script(
    LUA_KEYS
    + """
local f = redis.call('HMGET', KEYS[1], 'status', 'origin', 'sy_prio')
if not f[1] then return -1 end
if f[1] ~= 'failed' and f[1] ~= 'canceled' then return 0 end
local q = f[2] or 'default'
redis.call('ZREM', 'rq:failed:' .. q, ARGV[1])
redis.call('ZREM', 'rq:canceled:' .. q, ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'sy_error', 'exc_info', 'ended_at', 'sy_rated')
redis.call('PERSIST', KEYS[1])
requeue(ARGV[1], q, f[3], false)
return 1
"""
)
