"""The Lua scripts: each is one atomic round trip that keeps RQ's keys consistent.

Keys that a script derives from a job id or queue name (``rq:job:<id>``, ``rq:wip:<queue>``) are
built inside the script, as RQ's own layout needs; Switchyard targets a single Redis (not Cluster),
as RQ does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, final

import redis

__all__ = [
    "ACK_FIELDS",
    "CANCEL",
    "PROMOTE",
    "RECOVER",
    "RELEASE",
    "REQUEUE",
    "SCHEDULE_KEYED",
    "STEP",
    "Ack",
    "Script",
]


class Ack(NamedTuple):
    """One job's outcome as STEP takes it: the field names are the Lua locals it reads them into
    (``ACK_LOCALS``), so Python and the script share names, not positions."""

    mode: str  # 'ok', 'fail' or 'retry'
    id: str
    q: str  # the job's queue
    exec: str  # its execution id
    ended: str  # RQ format
    ended_ts: float  # unix seconds
    ttl: int  # of the job hash, result and registry entry
    text: bytes | str  # RQ's base64 return value, or exc_string
    exc_info: str
    err: str  # the error as JSON
    started_ts: float
    left: int | str  # retries_left after this attempt ('' when not a retry)
    tries: int | str  # number_of_retries after this attempt
    due: float | str  # when a retry is due (unix seconds), or '' for now


ACK_FIELDS: Final = Ack._fields
# Reads the outcome at ARGV offset b into locals named as Ack's fields.
ACK_LOCALS: Final = f"local {', '.join(ACK_FIELDS)} = unpack(ARGV, b + 1, b + {len(ACK_FIELDS)})"


@final
class Script:
    """A Lua script called by its SHA, loaded again after NOSCRIPT (e.g. a restarted server)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: redis.client.Pipeline, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Add the call to ``pipe``; run ``execute(raise_on_error=False)`` and :meth:`retry`."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def load(self, client: redis.Redis) -> None:
        client.script_load(self.source)


# Gives every job in the processing list KEYS[1] back to the front of its queue, in their order,
# as they were before their dequeue (attempt count, no execution, a doorbell token), and empties
# the list. Jobs already finished, failed or canceled just leave the list. (Part of STEP and
# RELEASE: for jobs a consumer holds but will not run, or never knew it had.)
_GIVE_BACK: Final = """
local held = redis.call('LRANGE', KEYS[1], 0, -1)
for h = #held, 1, -1 do
  local hid = held[h]
  local hk = 'rq:job:' .. hid
  local g = redis.call('HMGET', hk, 'origin', 'sy_exec', 'sy_attempt', 'status')
  if g[1] and g[4] ~= 'finished' and g[4] ~= 'failed' and g[4] ~= 'canceled' then
    if g[2] then redis.call('ZREM', 'rq:wip:' .. g[1], hid .. ':' .. g[2]) end
    redis.call('HSET', hk, 'status', 'queued',
      'sy_attempt', math.max((tonumber(g[3]) or 1) - 1, 0))
    redis.call('HDEL', hk, 'started_at', 'worker_name', 'sy_exec')
    redis.call('LPUSH', 'rq:queue:' .. g[1], hid)
    redis.call('RPUSH', 'switchyard:wake:' .. g[1], '1')
  end
end
if #held > 0 then redis.call('DEL', KEYS[1]) end
"""

# STEP: store the outcomes of the jobs just run, then dequeue the next batch, in one call.
# KEYS: processing list, n queue lists, n doorbells.
# ARGV[1] = m, then m outcomes, each the fields of one :class:`Ack` (read into locals of the same
#   names).  An outcome is stored only for a job still in the processing list, and takes
#   it out (so an outcome sent twice, after a lost reply, is stored once).
# Then the dequeue: now (RQ format), now (unix s), worker name, n, execution id prefix, k,
#   n queue names, was-idle ('1' when the consumer waited on the doorbells since its last call),
#   idle-until (unix s).  With k > 0 the consumer holds no job: whatever its processing list
#   still has (a dequeue whose reply was lost) goes back to the front of its queue first.  The
#   first job of the batch is marked running (``sy_running`` in the RQ worker hash); more are
#   taken from a queue only while it holds more jobs than consumers idle on it
#   (``switchyard:idle:<queue>``, a sorted set by idle-until), and a consumer that finds nothing
#   joins those sets until idle-until.  Moves up to k job ids, first queue first, into the
#   processing list, marks them started (RQ's fields, the started registry) and returns 11
#   values per job: id, queue index, data, retries_left, retry_intervals, number_of_retries,
#   result_ttl, failure_ttl, attempt, enqueued_at, sy_trace (the producer's trace context, or
#   nil).  A job that is not idempotent is only ever taken first in a batch, and ends it (so a
#   crash never fails one that had not started).  Jobs whose hash is gone or that were
#   canceled are dropped.  With every queue empty it clears the doorbells (a later job rings
#   again) and returns an empty list.
STEP: Final = Script(
    """
local m = tonumber(ARGV[1])
for o = 0, m - 1 do
  local b = 1 + o * ACK_SIZE
  ACK_LOCALS
  local jk, rk = 'rq:job:' .. id, 'rq:results:' .. id
  ttl = tonumber(ttl)
  local registry = nil
  -- only a job still in the processing list gets this outcome: an outcome sent again after a
  -- lost reply (or a job a recovery took back meanwhile) changes nothing
  if redis.call('LREM', KEYS[1], -1, id) == 0 then
    mode = 'done'
  end
  if mode == 'ok' then
    redis.call('HSET', jk, 'status', 'finished', 'ended_at', ended)
    redis.call('XADD', rk, 'MAXLEN', '10', '*', 'type', '1', 'return_value', text,
      'execution_id', exec, 'execution_started_at', started_ts,
      'execution_ended_at', ended_ts)
    registry = 'rq:finished:'
  elseif mode == 'fail' then
    redis.call('HSET', jk, 'status', 'failed', 'ended_at', ended, 'exc_info', exc_info,
      'sy_error', err)
    redis.call('XADD', rk, 'MAXLEN', '10', '*', 'type', '2', 'exc_string', text,
      'execution_id', exec, 'execution_started_at', started_ts,
      'execution_ended_at', ended_ts)
    registry = 'rq:failed:'
  elseif mode == 'retry' then
    redis.call('HSET', jk, 'retries_left', left, 'number_of_retries', tries,
      'exc_info', exc_info, 'sy_error', err)
    if due ~= '' then
      redis.call('HSET', jk, 'status', 'scheduled')
      redis.call('ZADD', 'rq:scheduled:' .. q, due, id)
    else
      redis.call('HSET', jk, 'status', 'queued', 'enqueued_at', ended)
      redis.call('RPUSH', 'rq:queue:' .. q, id)
      redis.call('RPUSH', 'switchyard:wake:' .. q, '1')
    end
  end
  if registry then
    if ttl > 0 then
      redis.call('EXPIRE', jk, ttl)
      redis.call('EXPIRE', rk, ttl)
      redis.call('ZADD', registry .. q, tonumber(ended_ts) + ttl, id)
    else
      redis.call('ZADD', registry .. q, '+inf', id)
    end
  end
  if mode ~= 'done' then redis.call('ZREM', 'rq:wip:' .. q, id .. ':' .. exec) end
end
local d = 2 + m * ACK_SIZE
local stamp, now, worker = ARGV[d], tonumber(ARGV[d + 1]), ARGV[d + 2]
local n, prefix, k = tonumber(ARGV[d + 3]), ARGV[d + 4], tonumber(ARGV[d + 5])
local got, count = {}, 0
if k > 0 then
  -- the consumer holds nothing now: what its list still has came from a dequeue whose reply
  -- was lost (never started): back to the front of its queue, to be taken again below
  GIVE_BACK
  if ARGV[d + 6 + n] == '1' then  -- it was waiting on the doorbells: no longer idle
    for i = 1, n do redis.call('ZREM', 'switchyard:idle:' .. ARGV[d + 5 + i], worker) end
  end
end
for i = 1, n do
  local qkey = KEYS[1 + i]
  local spare = nil
  while count < k do
    if count > 0 then
      -- beyond a batch's first job, take one only if no idle consumer of this queue is left
      -- without one: a prefetched job must not wait behind ours while another consumer idles
      if spare == nil then
        local idle = redis.call('ZCOUNT', 'switchyard:idle:' .. ARGV[d + 5 + i], now, '+inf')
        spare = k
        if idle > 0 then spare = redis.call('LLEN', qkey) - idle end
      end
      if spare <= 0 then break end
      spare = spare - 1
    end
    local id = redis.call('LMOVE', qkey, KEYS[1], 'LEFT', 'RIGHT')
    if not id then break end
    local jk = 'rq:job:' .. id
    local f = redis.call('HMGET', jk, 'data', 'status', 'retries_left', 'retry_intervals',
      'number_of_retries', 'result_ttl', 'failure_ttl', 'sy_attempt', 'timeout', 'sy_idempotent',
      'enqueued_at', 'sy_trace')
    if not f[1] or f[2] == 'canceled' then
      redis.call('LREM', KEYS[1], -1, id)
    elseif count > 0 and f[10] == '0' then
      redis.call('LMOVE', KEYS[1], qkey, 'RIGHT', 'LEFT')
      k = count
    else
      count = count + 1
      local exec = prefix .. '-' .. count
      local attempt = (tonumber(f[8]) or 0) + 1
      redis.call('HSET', jk, 'status', 'started', 'started_at', stamp, 'last_heartbeat', stamp,
        'worker_name', worker, 'sy_attempt', attempt, 'sy_exec', exec)
      local t = tonumber(f[9]) or -1
      if t <= 0 then t = 86400 end
      redis.call('ZADD', 'rq:wip:' .. ARGV[d + 5 + i], now + t * count + 60, id .. ':' .. exec)
      if count == 1 then  -- the job that runs now: recovery fails only this one if not idempotent
        redis.call('HSET', 'rq:worker:' .. worker, 'sy_running', id .. ':' .. exec)
      end
      for _, v in ipairs({id, i, f[1], f[3], f[4], f[5], f[6], f[7], attempt, f[11], f[12]}) do
        table.insert(got, v)
      end
      if f[10] == '0' then k = count end
    end
  end
  if count >= k then break end
end
if count == 0 and k > 0 then
  for i = 1, n do
    redis.call('DEL', KEYS[1 + n + i])
    local ik = 'switchyard:idle:' .. ARGV[d + 5 + i]
    redis.call('ZREMRANGEBYSCORE', ik, '-inf', now)
    redis.call('ZADD', ik, ARGV[d + 7 + n], worker)
  end
end
return got
""".replace("GIVE_BACK", _GIVE_BACK)
    .replace("ACK_LOCALS", ACK_LOCALS)
    .replace("ACK_SIZE", str(len(ACK_FIELDS)))
)


# KEYS: processing list.  Gives every job in it back to the head of its queue, in order, as it
# was: prefetched jobs that will not run here, and jobs whose dequeue reply was lost.  The
# consumer calls it only with every outcome stored; calling it twice changes nothing more.
RELEASE: Final = Script(_GIVE_BACK + "return #held\n")


# ARGV: now (unix seconds), now (RQ format), limit per queue, queue names...  Moves due jobs from
# RQ's scheduled registries onto their queues (ZREM decides who moves a job: never twice) and
# returns {jobs moved, the earliest remaining due time or ''}.
PROMOTE: Final = Script("""
local moved = 0
local nextdue = nil
for i = 4, #ARGV do
  local q = ARGV[i]
  local sk = 'rq:scheduled:' .. q
  local ids = redis.call('ZRANGEBYSCORE', sk, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  for _, id in ipairs(ids) do
    if redis.call('ZREM', sk, id) == 1 and redis.call('EXISTS', 'rq:job:' .. id) == 1 then
      redis.call('HSET', 'rq:job:' .. id, 'status', 'queued', 'enqueued_at', ARGV[2])
      redis.call('RPUSH', 'rq:queue:' .. q, id)
      redis.call('RPUSH', 'switchyard:wake:' .. q, '1')
      moved = moved + 1
    end
  end
  local first = redis.call('ZRANGE', sk, 0, 0, 'WITHSCORES')
  if first[2] then
    local s = tonumber(first[2])
    if nextdue == nil or s < nextdue then nextdue = s end
  end
end
return {moved, nextdue and string.format('%.6f', nextdue) or ''}
""")

# KEYS: idempotency key, job hash, queue list or scheduled zset, doorbell, rq:queues.
# ARGV: job id, key TTL, 'queue'|'schedule', score, queue key, then the hash's field/value pairs.
# Returns the id of the pending, running or finished job holding the key, else creates this one.
SCHEDULE_KEYED: Final = Script("""
local existing = redis.call('GET', KEYS[1])
if existing then
  local st = redis.call('HGET', 'rq:job:' .. existing, 'status')
  if st == 'queued' or st == 'scheduled' or st == 'started' or st == 'finished'
      or st == 'deferred' then
    return existing
  end
end
redis.call('HSET', KEYS[2], unpack(ARGV, 6))
if ARGV[3] == 'schedule' then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
else
  redis.call('RPUSH', KEYS[3], ARGV[1])
  redis.call('RPUSH', KEYS[4], '1')
end
redis.call('SADD', KEYS[5], ARGV[5])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
""")

# KEYS: job hash.  ARGV: job id, now (RQ format), now (unix seconds).
# 1: canceled (was queued or scheduled), 0: already running or done, -1: no such job.
CANCEL: Final = Script("""
local f = redis.call('HMGET', KEYS[1], 'status', 'origin', 'failure_ttl')
if not f[1] then return -1 end
if f[1] == 'queued' or f[1] == 'scheduled' or f[1] == 'deferred' then
  local q = f[2] or ''
  redis.call('LREM', 'rq:queue:' .. q, 0, ARGV[1])
  redis.call('ZREM', 'rq:scheduled:' .. q, ARGV[1])
  redis.call('HSET', KEYS[1], 'status', 'canceled', 'ended_at', ARGV[2])
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
""")

# KEYS: the dead consumer's processing list, switchyard:consumers, its queue set.
# ARGV: consumer name, now (RQ format), now (unix seconds), failure text, failure as RQ's
# base64(zlib) result text.  Requeues (at the front, in their order) each job it held; the job
# it was running (``sy_running`` in its RQ worker hash: id and execution) is failed instead when
# its action is not idempotent.  Jobs it had prefetched and not started go back as they were
# (their attempt not counted).  Without a running mark (a consumer of an older version, or its
# worker hash expired) every non-idempotent job is failed, as it might have started.
# Unregisters the consumer; returns the job ids.
RECOVER: Final = Script("""
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local out = {}
local running = redis.call('HGET', 'rq:worker:' .. ARGV[1], 'sy_running')
for n = #ids, 1, -1 do  -- last first: LPUSH then leaves them in their order
  local id = ids[n]
  local jk = 'rq:job:' .. id
  local f = redis.call('HMGET', jk, 'origin', 'sy_idempotent', 'sy_exec', 'failure_ttl',
    'description', 'status')
  if f[1] and f[6] ~= 'finished' and f[6] ~= 'failed' and f[6] ~= 'canceled' then
    local q = f[1]
    if f[3] then redis.call('ZREM', 'rq:wip:' .. q, id .. ':' .. f[3]) end
    local started = not running or running == id .. ':' .. (f[3] or '')
    if f[2] == '0' and started then
      local err = cjson.encode({type = 'WorkerDiedError', message = ARGV[4], action = f[5] or ''})
      redis.call('HSET', jk, 'status', 'failed', 'ended_at', ARGV[2], 'exc_info',
        'WorkerDiedError: ' .. ARGV[4], 'sy_error', err)
      local ttl = tonumber(f[4]) or 604800
      redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', '10', '*', 'type', '2',
        'worker_name', ARGV[1], 'exc_string', ARGV[5])
      if ttl > 0 then
        redis.call('EXPIRE', jk, ttl)
        redis.call('EXPIRE', 'rq:results:' .. id, ttl)
        redis.call('ZADD', 'rq:failed:' .. q, tonumber(ARGV[3]) + ttl, id)
      else
        redis.call('ZADD', 'rq:failed:' .. q, '+inf', id)
      end
    else
      redis.call('HSET', jk, 'status', 'queued', 'enqueued_at', ARGV[2])
      if not started then  -- prefetched, never run: as it was before its dequeue
        local a = tonumber(redis.call('HGET', jk, 'sy_attempt'))
        if a and a > 0 then redis.call('HSET', jk, 'sy_attempt', a - 1) end
        redis.call('HDEL', jk, 'started_at', 'worker_name', 'sy_exec')
      end
      redis.call('LPUSH', 'rq:queue:' .. q, id)
      redis.call('RPUSH', 'switchyard:wake:' .. q, '1')
    end
    table.insert(out, id)
  end
end
local wk = 'rq:worker:' .. ARGV[1]
for _, q in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  redis.call('SREM', 'rq:workers:' .. q, wk)
end
redis.call('SREM', 'rq:workers', wk)
redis.call('DEL', KEYS[1], KEYS[3], wk)
redis.call('SREM', KEYS[2], ARGV[1])
return out
""")

# KEYS: job hash.  ARGV: job id, now (RQ format).  Puts a failed (or canceled) job back on its
# queue, as `rq requeue` does.  1: requeued, 0: not failed, -1: no such job.
REQUEUE: Final = Script("""
local f = redis.call('HMGET', KEYS[1], 'status', 'origin')
if not f[1] then return -1 end
if f[1] ~= 'failed' and f[1] ~= 'canceled' then return 0 end
local q = f[2] or 'default'
redis.call('ZREM', 'rq:failed:' .. q, ARGV[1])
redis.call('ZREM', 'rq:canceled:' .. q, ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'sy_error', 'exc_info', 'ended_at')
redis.call('PERSIST', KEYS[1])
redis.call('RPUSH', 'rq:queue:' .. q, ARGV[1])
redis.call('RPUSH', 'switchyard:wake:' .. q, '1')
redis.call('SADD', 'rq:queues', 'rq:queue:' .. q)
return 1
""")
