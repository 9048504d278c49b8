"""The schedulers' Lua scripts: the lease with its fencing token, and the fenced firing of a tick.

Any number of schedulers (one per worker supervisor) compete for one lease; its holder fires the
ticks. A holder that stalls past the lease's expiry (a pause, a partition) may still believe it
holds it: every firing therefore runs in one script that first checks that the lease still holds
the caller's fencing token, and records the tick as handled in the same step, so a stale holder
fires nothing and no tick fires twice.
"""

from __future__ import annotations

from typing import Final

from switchyard_rq._wire.admin import KEYED
from switchyard_rq._wire.scripts import Script

__all__ = ["ADVANCE", "FIRE", "LEASE", "RELEASE_LEASE"]

# KEYS: lease, fence counter.  ARGV: the caller's token ('' if it holds none), lease ms.
# Renews the caller's lease, or takes a free one with the next token (SET NX PX after INCR);
# returns the token held, or false if another holds the lease.
LEASE: Final = Script("""
local current = redis.call('GET', KEYS[1])
if current then
  if current == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return current
  end
  return false
end
local token = tostring(redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[2])
return token
""")

# KEYS: lease.  ARGV: token.  Gives the lease up if the caller still holds it.
RELEASE_LEASE: Final = Script("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")

_FENCE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'stale', ''} end
"""

# KEYS: lease, schedule state.  ARGV: token, until (unix seconds), missed (ticks dropped).
# Records every tick up to `until` as handled without firing (a new schedule's start, or ticks
# the catch-up policy drops); never moves `last` back.
ADVANCE: Final = Script(
    _FENCE
    + """
local last = tonumber(redis.call('HGET', KEYS[2], 'last'))
if last and last >= tonumber(ARGV[2]) then return {'done', ''} end
redis.call('HSET', KEYS[2], 'last', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', KEYS[2], 'missed', ARGV[3]) end
return {'advanced', ''}
"""
)

# KEYS: lease, schedule state, then keyed's K (idempotency key, job hash, queue list or
# scheduled zset, doorbell, the queue's event stream when events are on).  ARGV: token, tick
# (unix seconds), overlap ('skip'|'queue'|'allow'), kind ('tick': a due tick; 'pending': the
# tick overlap 'queue' held), then keyed's A.
# Returns {outcome, job id}: 'stale' (the lease is not the caller's: nothing done), 'done' (the
# tick was handled already), 'paused', 'skipped' or 'held' (overlap: the last firing's job is
# still waiting or running), 'wait' (a held tick whose blocker still runs), 'fired'.
FIRE: Final = Script(
    KEYED
    + _FENCE
    + """
local s = redis.call('HMGET', KEYS[2], 'last', 'job', 'paused', 'pending')
local tick = tonumber(ARGV[2])
if ARGV[4] == 'tick' then
  if s[1] and tonumber(s[1]) >= tick then return {'done', ''} end
  redis.call('HSET', KEYS[2], 'last', ARGV[2])
  if s[3] then
    redis.call('HINCRBY', KEYS[2], 'skipped', 1)
    return {'paused', ''}
  end
elseif s[4] ~= ARGV[2] then
  return {'done', ''}
end
if ARGV[3] ~= 'allow' and s[2] then
  local st = redis.call('HGET', 'rq:job:' .. s[2], 'status')
  if st == 'queued' or st == 'scheduled' or st == 'started' or st == 'deferred' then
    if ARGV[4] == 'pending' then return {'wait', ''} end
    if ARGV[3] == 'queue' then
      redis.call('HSET', KEYS[2], 'pending', ARGV[2])
      return {'held', ''}
    end
    redis.call('HINCRBY', KEYS[2], 'skipped', 1)
    return {'skipped', ''}
  end
end
local id = keyed({KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]}, {unpack(ARGV, 5)})
local t = redis.call('TIME')
local at = string.format('%.3f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
redis.call('HSET', KEYS[2], 'job', id, 'tick', ARGV[2], 'fired_at', at)
redis.call('HDEL', KEYS[2], 'pending')
redis.call('HINCRBY', KEYS[2], 'fired', 1)
return {'fired', id}
"""
)
