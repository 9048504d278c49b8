"""The producer's and the operator's Lua scripts: a keyed schedule, cancel (a job, a workflow),
requeue."""

from __future__ import annotations

from typing import Final

from switchyard_rq._wire.keys import EVENTS_MAXLEN, LUA_KEYS
from switchyard_rq._wire.scripts import Script
from switchyard_rq._wire.workflow import LUA_WF

__all__ = ["CANCEL", "KEYED", "REQUEUE", "SCHEDULE_KEYED", "WF_CANCEL"]

# A keyed schedule as a Lua function (SCHEDULE_KEYED's body; the scheduler's FIRE runs it after
# its fencing check).  K: idempotency key, job hash, queue list (of the job's priority) or
# scheduled zset, doorbell, and the queue's event stream when events are on (all in the queue's
# slot: the caller registers the queue in rq:queues).  A: job id, key TTL, 'queue'|'schedule',
# score, the action, then the hash's field/value pairs.  Returns the id of the pending, running
# or finished job holding the key, else creates this one (a 'scheduled' event).
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
  redis.call('HSET', K[2], unpack(A, 6))
  if A[3] == 'schedule' then
    redis.call('ZADD', K[3], A[4], A[1])
  else
    redis.call('RPUSH', K[3], A[1])
    redis.call('RPUSH', K[4], '1')
  end
  redis.call('SET', K[1], A[1], 'EX', A[2])
  if K[5] then
    redis.call('XADD', K[5], 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'event', 'scheduled',
      'job', A[1], 'action', A[5])
  end
  return A[1]
end
""".replace("EVENTS_MAXLEN", str(EVENTS_MAXLEN))

# KEYS and ARGV: as ``keyed``'s K and A above.
SCHEDULE_KEYED: Final = Script(KEYED + "return keyed(KEYS, ARGV)\n")

# KEYS: job hash.  ARGV: job id, now (RQ format), now (unix seconds), '1' to write the event
# stream.  1: canceled (was queued, scheduled, deferred by flow control or waiting in a
# workflow), 2: running, asked to stop (its worker notices within a second), 0: already done,
# -1: no such job.  A workflow's step that is canceled cancels its workflow.
CANCEL: Final = Script(
    LUA_KEYS
    + LUA_WF
    + """
local done = stop_job(ARGV[1], ARGV[2], ARGV[3], ARGV[4], true)
if done == 1 then
  local f = redis.call('HMGET', KEYS[1], 'sy_wf', 'description')
  if f[1] then
    local err = cjson.encode({type = 'JobCancelledError', action = f[2] or '',
      message = 'the job was canceled before it ran'})
    wf_broken(f[1], ARGV[1], 'canceled', err, ARGV[2], ARGV[3], ARGV[4])
  end
end
return done
"""
)

# KEYS: workflow hash.  ARGV: workflow id, now (RQ format), now (unix seconds), '1' to write the
# event stream, the error (JSON).  Cancels every job of the workflow that has not ended (queued
# ones canceled, running ones asked to stop) and ends it as canceled.  1: canceled, 0: it had
# ended, -1: no such workflow.
WF_CANCEL: Final = Script(
    LUA_KEYS
    + LUA_WF
    + """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return -1 end
return wf_broken(ARGV[1], '', 'canceled', ARGV[5], ARGV[2], ARGV[3], ARGV[4])
"""
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
