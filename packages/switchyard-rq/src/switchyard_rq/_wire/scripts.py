"""The consumer's Lua scripts: each is one atomic round trip that keeps RQ's keys consistent.

Keys that a script derives from a job id or queue name (``rq:job:<id>``, ``rq:wip:<queue>``) are
built inside the script, as RQ's own layout needs; Switchyard targets a single Redis (not Cluster),
as RQ does.

Python and Lua share names, not positions: an outcome's fields (:class:`Ack`), the dequeue's
arguments (:class:`Take`) and the fields returned for each job (:class:`Taken`) are NamedTuples
whose field names are the Lua locals the scripts read them into (tests/test_script_contract.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, final

import redis

from switchyard_rq._wire.flow import LUA_FLOW
from switchyard_rq._wire.keys import (
    DONE_CHANNEL,
    FINISHED_DROPS,
    FINISHED_MAX,
    LUA_KEYS,
    PROGRESS_PREFIX,
)
from switchyard_rq._wire.workflow import LUA_WF

__all__ = [
    "ACK_FIELDS",
    "PROMOTE",
    "RECOVER",
    "RELEASE",
    "RENEW",
    "STEP",
    "TAKEN_FIELDS",
    "WATCH",
    "Ack",
    "Script",
    "Take",
    "Taken",
]


class Ack(NamedTuple):
    """One job's outcome as STEP takes it: the field names are the Lua locals it reads them into
    (``ACK_LOCALS``), so Python and the script share names, not positions."""

    mode: str  # 'ok', 'fail', 'retry' or 'cancel' (it stopped when asked to)
    id: str
    q: str  # the job's queue
    exec: str  # its execution id
    ended: str  # RQ format
    ended_ts: float  # unix seconds
    ttl: int  # of the job hash and its registry entry (0: keep nothing of a finished job)
    result: bytes | str  # the output model's JSON (ok)
    rq_text: bytes | str  # RQ's result stream entry (its base64 return value or exc_string), or
    exc_info: str
    err: str  # the error as JSON
    started_ts: float
    left: int | str  # retries_left after this attempt ('' when not a retry)
    tries: int | str  # number_of_retries after this attempt
    due: float | str  # when a retry is due (unix seconds), or '' for now
    flow: bytes | str  # the job's sy_flow (its limiters), or ''
    trip: int  # 1: a failure that counts for a circuit breaker
    action: str = ""  # the action's name (for the event stream), or ''
    progress: str = ""  # the job's last progress report (JSON), or '' when it made none
    wf: bytes | str = ""  # the job's workflow (sy_wf), or ''


class Take(NamedTuple):
    """The dequeue's arguments (after the outcomes): named as the Lua locals of ``TAKE_LOCALS``;
    the queue names follow them."""

    stamp: str  # now, RQ format
    now: float  # now, unix seconds (the consumer's clock: RQ's registries)
    worker: str  # the consumer's name
    n: int  # how many queue names follow
    prefix: str  # execution ids are <prefix>-<count>
    k: int  # take up to k jobs (0: store outcomes only)
    held: int  # how many jobs the consumer holds (running or waiting in its hands)
    marks: int  # the first `marks` jobs taken start now (running marks, see RECOVER)
    tick: int  # the consumer's count of jobs taken: turns the priority wheel
    was_idle: int  # 1: the consumer waited on the doorbells since its last call
    idle_until: float  # unix seconds: an idle consumer counts as idle until then
    lease: float  # seconds a concurrency lease lasts unless renewed
    events: str = "0"  # '1': write the job event stream (outcomes and starts), else '0'


class Taken(NamedTuple):
    """What STEP returns for each job it took, in this order (``TAKEN`` in the script)."""

    id: bytes
    qi: int  # the index (1-based) of its queue among the Take's queue names
    data: bytes | None
    left: bytes | None  # retries_left
    intervals: bytes | None  # retry_intervals
    tries: bytes | None  # number_of_retries
    result_ttl: bytes | None
    failure_ttl: bytes | None
    attempt: int
    enqueued: bytes | None  # enqueued_at, else created_at (queued when created: no enqueued_at)
    trace: bytes | None  # sy_trace
    flow: bytes | None  # sy_flow
    action: bytes | None  # description: the action's name
    wf: bytes | None  # sy_wf: the workflow it is a step of


ACK_FIELDS: Final = Ack._fields
TAKE_FIELDS: Final = Take._fields
TAKEN_FIELDS: Final = Taken._fields
# Reads the outcome at ARGV offset b into locals named as Ack's fields.
ACK_LOCALS: Final = f"local {', '.join(ACK_FIELDS)} = unpack(ARGV, b + 1, b + {len(ACK_FIELDS)})"
# Reads the dequeue's arguments at ARGV offset d into locals named as Take's fields.
TAKE_LOCALS: Final = f"local {', '.join(TAKE_FIELDS)} = unpack(ARGV, d, d + {len(TAKE_FIELDS) - 1})"


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

    def load(self, client: redis.Redis) -> None:
        client.script_load(self.source)


def _script(body: str) -> Script:
    """A script with the shared Lua functions (keys, flow control, workflows) above ``body``."""
    return Script(LUA_KEYS + LUA_FLOW + LUA_WF + body)


# Gives every job in the processing list KEYS[1] but those in the table `keep` back to the front
# of its queue, in their order, as they were before their dequeue (attempt count, no execution, a
# doorbell token), and releases the leases they took; the list keeps only `keep`'s. Jobs already
# finished, failed or canceled just leave the list. (Part of STEP and RELEASE: for jobs a
# consumer holds but will not run, or never knew it had.)
_GIVE_BACK: Final = """
local listed = redis.call('LRANGE', KEYS[1], 0, -1)
local gnow, kept, given = nil, {}, 0
for h = #listed, 1, -1 do
  local hid = listed[h]
  local hk = 'rq:job:' .. hid
  local g = keep[hid] and {} or redis.call('HMGET', hk, 'origin', 'sy_exec', 'sy_attempt',
    'status', 'sy_prio', 'sy_flow')
  if keep[hid] then
    table.insert(kept, 1, hid)
  elseif g[1] and g[4] ~= 'finished' and g[4] ~= 'failed' and g[4] ~= 'canceled' then
    given = given + 1
    if g[2] then
      redis.call('ZREM', 'rq:wip:' .. g[1], hid .. ':' .. g[2])
      if g[6] then
        gnow = gnow or clock()
        flow_done(cjson.decode(g[6]), hid .. ':' .. g[2], '', gnow, g[1])
      end
    end
    redis.call('HSET', hk, 'status', 'queued',
      'sy_attempt', math.max((tonumber(g[3]) or 1) - 1, 0))
    redis.call('HDEL', hk, 'started_at', 'worker_name', 'sy_exec', 'sy_run')
    requeue(hid, g[1], g[5], true)
  end
end
if #listed > 0 then
  redis.call('DEL', KEYS[1])
  if #kept > 0 then redis.call('RPUSH', KEYS[1], unpack(kept)) end
end
"""

# STEP: store the outcomes of the jobs just run, then dequeue the next batch, in one call.
# KEYS: processing list, n queue lists (normal priority), n doorbells.
# ARGV[1] = m, then m outcomes, each the fields of one :class:`Ack` (read into locals of the same
#   names).  An outcome is stored only for a job still in the processing list, and takes it out
#   (so an outcome sent twice, after a lost reply, is stored once); its leases are released and
#   its circuit breaker told.
# Then the dequeue: the fields of :class:`Take`, then n queue names.  When the consumer holds no
#   job (held = 0), whatever its processing list still has (a dequeue whose reply was lost) goes
#   back to the front of its queue first.  Within a queue, jobs of high, normal and low priority
#   are taken 4:2:1 while all three wait (a wheel turned by `tick`), so none starves.  More than
#   one job is taken from a queue only while it holds more jobs than consumers idle on it
#   (``switchyard:idle:<queue>``, a sorted set by idle-until), and a consumer that finds nothing
#   joins those sets until idle-until.  A job whose limiters do not let it start (see flow.py) is
#   deferred instead (at most DEFER_LIMIT a call) and not counted.  Moves up to k job ids, first
#   queue first, into the processing list, marks them started (RQ's fields, the started
#   registry; the first `marks` also ``sy_run``: they start now) and returns the earliest time a
#   job it deferred for its rate may start (or ''), how many it deferred, then the fields of
#   :class:`Taken` per job.  A
#   job that is not idempotent is only ever taken first in a batch, and ends it (so a crash never
#   fails one that had not started).  Jobs that were canceled are dropped; a job whose hash is
#   gone, or has no data, is taken like any other (its data nil): the consumer fails it with the
#   reason, so every job taken ends in a recorded outcome.
#   With every queue empty it clears the doorbells (a later job rings again).
#   An outcome of a job asked to stop (``sy_cancel``) that failed is stored as 'cancel' (the
#   job is canceled: not retried, not failed); a job's last progress report is stored with its
#   outcome.  With events on (Take's ``events``), each outcome and each job taken is an entry
#   on its queue's event stream.  The outcome of a workflow's step moves the workflow on (see
#   workflow.py): the next stage is queued, or the workflow ends.
STEP: Final = _script(
    """
local m = tonumber(ARGV[1])
local fnow, finished = nil, {}
local ev = ARGV[2 + m * ACK_SIZE + EVENTS_AT]
-- on a Redis Cluster the processing list is per queue, named after its hash tag: "...}"
local clustered = string.byte(KEYS[1], -1) == 125
for o = 0, m - 1 do
  local b = 1 + o * ACK_SIZE
  ACK_LOCALS
  local jk, rk = 'rq:job:' .. id, 'rq:results:' .. id
  ttl = tonumber(ttl)
  local registry = nil
  if wf == '' then wf = false end
  -- only a job still in the processing list gets this outcome: an outcome sent again after a
  -- lost reply (or a job a recovery took back meanwhile) changes nothing. (On a cluster the
  -- job's hash is touched first: when its slot is moving and the hash already left, the script
  -- stops here, before the list lets go of the job, and the outcome is sent again there.)
  if clustered then redis.call('EXISTS', jk) end
  if redis.call('LREM', KEYS[1], -1, id) == 0 then
    mode = 'done'
  else
    if (mode == 'fail' or mode == 'retry') and redis.call('HEXISTS', jk, 'sy_cancel') == 1 then
      mode = 'cancel'
    end
    if progress ~= '' then
      redis.call('ZREM', 'PROGRESS_PREFIX' .. q, id)
      if mode ~= 'ok' or ttl ~= 0 then redis.call('HSET', jk, 'sy_progress', progress) end
    end
  end
  if mode == 'ok' then
    if ttl == 0 then  -- nobody waits for the result: nothing is kept
      redis.call('DEL', jk)
    else
      -- finished: the result in the hash, what only a waiting or running job needs gone
      redis.call('HSET', jk, 'status', 'finished', 'ended_at', ended, 'sy_result', result)
      redis.call('HDEL', jk, FINISHED_DROPS)
      registry = 'rq:finished:'
    end
    if rq_text ~= '' then  -- RQ's result stream too (SWITCHYARD_RQ_RESULTS: RQ's own tools)
      redis.call('XADD', rk, 'MAXLEN', '10', '*', 'type', '1', 'return_value', rq_text,
        'execution_id', exec, 'execution_started_at', started_ts,
        'execution_ended_at', ended_ts)
    end
    redis.call('PUBLISH', 'DONE_CHANNEL' .. id, 'finished')
    emit(ev, q, 'succeeded', id, action)
    if wf then wf_ok(wf, id, result, ended, ev) end
  elseif mode == 'fail' then
    redis.call('HSET', jk, 'status', 'failed', 'ended_at', ended, 'exc_info', exc_info,
      'sy_error', err)
    if rq_text ~= '' then
      redis.call('XADD', rk, 'MAXLEN', '10', '*', 'type', '2', 'exc_string', rq_text,
        'execution_id', exec, 'execution_started_at', started_ts,
        'execution_ended_at', ended_ts)
    end
    registry = 'rq:failed:'
    redis.call('PUBLISH', 'DONE_CHANNEL' .. id, 'failed')
    emit(ev, q, 'failed', id, action, 'error', err)
    if wf then wf_broken(wf, id, 'failed', err, ended, ended_ts, ev) end
  elseif mode == 'cancel' then
    redis.call('HSET', jk, 'status', 'canceled', 'ended_at', ended, 'exc_info', exc_info,
      'sy_error', err)
    registry = 'rq:canceled:'
    redis.call('PUBLISH', 'DONE_CHANNEL' .. id, 'canceled')
    emit(ev, q, 'cancelled', id, action)
    if wf then wf_broken(wf, id, 'canceled', err, ended, ended_ts, ev) end
  elseif mode == 'retry' then
    redis.call('HSET', jk, 'retries_left', left, 'number_of_retries', tries,
      'exc_info', exc_info, 'sy_error', err)
    if due ~= '' then
      redis.call('HSET', jk, 'status', 'scheduled')
      redis.call('ZADD', 'rq:scheduled:' .. q, due, id)
    else
      redis.call('HSET', jk, 'status', 'queued', 'enqueued_at', ended)
      requeue(id, q, redis.call('HGET', jk, 'sy_prio'), false)
    end
    emit(ev, q, 'retried', id, action, 'error', err)
  end
  if registry then
    if ttl > 0 then
      redis.call('EXPIRE', jk, ttl)
      if rq_text ~= '' then redis.call('EXPIRE', rk, ttl) end
      redis.call('ZADD', registry .. q, tonumber(ended_ts) + ttl, id)
    else
      redis.call('ZADD', registry .. q, '+inf', id)
    end
    if registry == 'rq:finished:' then finished[registry .. q] = true end
  end
  if mode ~= 'done' then
    redis.call('ZREM', 'rq:wip:' .. q, id .. ':' .. exec)
    if flow ~= '' then
      local verdict = ''
      if mode == 'ok' then verdict = 'ok' elseif trip == '1' then verdict = 'failed' end
      fnow = fnow or clock()
      flow_done(cjson.decode(flow), id .. ':' .. exec, verdict, fnow, q)
    end
  end
end
-- a finished registry holds at most FINISHED_MAX jobs per queue, the latest (RQ's cleaning, or
-- this, drops entries whose jobs expired)
for key in pairs(finished) do
  redis.call('ZREMRANGEBYRANK', key, 0, -FINISHED_MAX - 1)
end
local d = 2 + m * ACK_SIZE
TAKE_LOCALS
n, k, marks, tick = tonumber(n), tonumber(k), tonumber(marks), tonumber(tick)
local qname = function(i) return ARGV[d + TAKE_SIZE - 1 + i] end
local got, count, deferred, nextdue = {'', 0}, 0, 0, nil
if k > 0 and tonumber(held) == 0 then
  -- the consumer holds nothing now: what its list still has came from a dequeue whose reply
  -- was lost (never started): back to the front of its queue, to be taken again below
  local keep = {}
  GIVE_BACK
  if was_idle == '1' then  -- it was waiting on the doorbells: no longer idle
    for i = 1, n do redis.call('ZREM', 'switchyard:idle:' .. qname(i), worker) end
  end
end
local WHEEL = {'h', '', 'h', 'l', 'h', '', 'h'}
for i = 1, n do
  local q = qname(i)
  local lists = {['h'] = qkey(q, 'h'), [''] = KEYS[1 + i], ['l'] = qkey(q, 'l')}
  local some = {['h'] = redis.call('EXISTS', lists['h']) == 1, [''] = true,
    ['l'] = redis.call('EXISTS', lists['l']) == 1}
  local spare = nil
  while count < k and deferred < DEFER_LIMIT do
    if count > 0 then
      -- beyond a batch's first job, take one only if no idle consumer of this queue is left
      -- without one: a prefetched job must not wait behind ours while another consumer idles
      if spare == nil then
        local idle = redis.call('ZCOUNT', 'switchyard:idle:' .. q, now, '+inf')
        spare = k
        if idle > 0 then
          spare = redis.call('LLEN', KEYS[1 + i]) - idle
          if some['h'] then spare = spare + redis.call('LLEN', lists['h']) end
          if some['l'] then spare = spare + redis.call('LLEN', lists['l']) end
        end
      end
      if spare <= 0 then break end
      spare = spare - 1
    end
    -- the wheel names the preferred level; the others follow, highest first
    local first = WHEEL[tick % 7 + 1]
    local id, src = nil, nil
    for _, p in ipairs({first, 'h', '', 'l'}) do
      if some[p] then
        id = redis.call('LMOVE', lists[p], KEYS[1], 'LEFT', 'RIGHT')
        if id then src = lists[p]; break end
        if p ~= '' then some[p] = false end
      end
    end
    if not id then break end
    local jk = 'rq:job:' .. id
    local f = redis.call('HMGET', jk, 'data', 'status', 'retries_left', 'retry_intervals',
      'number_of_retries', 'result_ttl', 'failure_ttl', 'sy_attempt', 'timeout', 'sy_idempotent',
      'enqueued_at', 'sy_trace', 'sy_flow', 'sy_rated', 'created_at', 'description', 'sy_wf')
    if f[2] == 'canceled' then
      redis.call('RPOP', KEYS[1])
    elseif count > 0 and f[10] == '0' then
      redis.call('LMOVE', KEYS[1], src, 'RIGHT', 'LEFT')
      k = count
    else
      local exec = prefix .. '-' .. (count + 1)
      local verdict = nil
      if f[13] then
        fnow = fnow or clock()
        verdict = admit(id, jk, id .. ':' .. exec, cjson.decode(f[13]), f[14], fnow, q,
          tonumber(lease))
      end
      if verdict then  -- deferred: not taken, not an attempt
        redis.call('RPOP', KEYS[1])
        deferred = deferred + 1
        if verdict ~= 'parked' and (nextdue == nil or verdict < nextdue) then nextdue = verdict end
      else
        count = count + 1
        tick = tick + 1
        local attempt = (tonumber(f[8]) or 0) + 1
        if count <= marks then  -- it starts now: marked running (see RECOVER)
          redis.call('HSET', jk, 'status', 'started', 'started_at', stamp, 'last_heartbeat', stamp,
            'worker_name', worker, 'sy_attempt', attempt, 'sy_exec', exec, 'sy_run', exec)
        else
          redis.call('HSET', jk, 'status', 'started', 'started_at', stamp, 'last_heartbeat', stamp,
            'worker_name', worker, 'sy_attempt', attempt, 'sy_exec', exec)
        end
        local t = tonumber(f[9]) or -1
        if t <= 0 then t = 86400 end
        redis.call('ZADD', 'rq:wip:' .. q, now + t * count + 60, id .. ':' .. exec)
        for _, v in ipairs({TAKEN}) do table.insert(got, v) end
        emit(events, q, 'started', id, f[16], 'attempt', attempt)
        if f[10] == '0' then k = count end
      end
    end
  end
  if count >= k or deferred >= DEFER_LIMIT then break end
end
if nextdue then got[1] = string.format('%.6f', nextdue) end
got[2] = deferred
if count == 0 and k > 0 and deferred == 0 then
  for i = 1, n do
    redis.call('DEL', KEYS[1 + n + i])
    local ik = 'switchyard:idle:' .. qname(i)
    redis.call('ZREMRANGEBYSCORE', ik, '-inf', now)
    redis.call('ZADD', ik, idle_until, worker)
  end
end
return got
""".replace("GIVE_BACK", _GIVE_BACK)
    .replace("FINISHED_DROPS", ", ".join(f"'{f}'" for f in FINISHED_DROPS))
    .replace("DONE_CHANNEL", DONE_CHANNEL)
    .replace("FINISHED_MAX", str(FINISHED_MAX))
    .replace("ACK_LOCALS", ACK_LOCALS)
    .replace("ACK_SIZE", str(len(ACK_FIELDS)))
    .replace("TAKE_LOCALS", TAKE_LOCALS)
    .replace("TAKE_SIZE", str(len(TAKE_FIELDS)))
    .replace("EVENTS_AT", str(TAKE_FIELDS.index("events")))
    .replace("PROGRESS_PREFIX", PROGRESS_PREFIX)
    .replace("DEFER_LIMIT", "64")
    .replace(
        "{TAKEN}",
        "{id, i, f[1], f[3], f[4], f[5], f[6], f[7], attempt, f[11] or f[15], f[12], f[13], "
        "f[16], f[17]}",
    )
)

# KEYS: processing list.  ARGV: ids to keep (jobs still running).  Gives every other job in it
# back to the head of its queue, in order, as it was: prefetched jobs that will not run here, and
# jobs whose dequeue reply was lost.  The consumer calls it only with every outcome stored;
# calling it twice changes nothing more.  Returns how many it gave back.
RELEASE: Final = _script(
    "local keep = {}\nfor i = 1, #ARGV do keep[ARGV[i]] = true end\n"
    + _GIVE_BACK
    + "return given\n"
)

# ARGV: lease seconds, then (key, member) pairs.  Extends the concurrency leases of running jobs
# (on Redis's clock, as the dequeue took them); a lease that already lapsed stays gone.
RENEW: Final = _script("""
local now = clock()
for i = 2, #ARGV, 2 do
  redis.call('ZADD', ARGV[i], 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
end
return 1
""")


# ARGV: now (unix seconds), now (RQ format), limit per queue, queue names...  Moves due jobs from
# RQ's scheduled registries onto their queues (ZREM decides who moves a job: never twice), lets
# parked jobs whose limiter has room again back onto theirs (flow.py's sweep), and returns {jobs
# moved, the earliest remaining due time or ''}.
PROMOTE: Final = _script("""
local moved = 0
local nextdue = nil
for i = 4, #ARGV do
  local q = ARGV[i]
  local sk = 'rq:scheduled:' .. q
  local ids = redis.call('ZRANGEBYSCORE', sk, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  for _, id in ipairs(ids) do
    if redis.call('ZREM', sk, id) == 1 and redis.call('EXISTS', 'rq:job:' .. id) == 1 then
      local jk = 'rq:job:' .. id
      redis.call('HSET', jk, 'status', 'queued', 'enqueued_at', ARGV[2])
      requeue(id, q, redis.call('HGET', jk, 'sy_prio'), false)
      moved = moved + 1
    end
  end
  local first = redis.call('ZRANGE', sk, 0, 0, 'WITHSCORES')
  if first[2] then
    local s = tonumber(first[2])
    if nextdue == nil or s < nextdue then nextdue = s end
  end
  sweep(clock(), q)
end
return {moved, nextdue and string.format('%.6f', nextdue) or ''}
""")

# KEYS: a dead consumer's processing list.
# ARGV: consumer name, now (RQ format), now (unix seconds), failure text, failure as RQ's
# base64(zlib) result text, '1' to write RQ's result stream too, the failure TTL when the job
# names none, '1' to write the job event stream.  Requeues (at the front, in their order) each
# job it held; a job it was running (its ``sy_run`` mark is its execution: it started) is failed
# instead when its action is not idempotent.  Jobs it had prefetched and not started go back as
# they were (their attempt not counted).  Leases the jobs held are released (a breaker probe
# among them lets the next job probe).  A job asked to stop is canceled instead of requeued; a
# workflow's step that fails or is canceled here breaks its workflow.  Deletes the list; returns
# the job ids.  (The consumer's registration is the caller's to remove: those keys live apart
# from the queue's on a cluster.)
RECOVER: Final = _script(
    """
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local out = {}
local fnow = nil
for n = #ids, 1, -1 do  -- last first: LPUSH then leaves them in their order
  local id = ids[n]
  local jk = 'rq:job:' .. id
  local f = redis.call('HMGET', jk, 'origin', 'sy_idempotent', 'sy_exec', 'failure_ttl',
    'description', 'status', 'sy_run', 'sy_prio', 'sy_flow', 'sy_cancel', 'sy_wf')
  if f[1] and f[6] ~= 'finished' and f[6] ~= 'failed' and f[6] ~= 'canceled' then
    local q = f[1]
    if f[3] then
      redis.call('ZREM', 'rq:wip:' .. q, id .. ':' .. f[3])
      if f[9] then
        fnow = fnow or clock()
        flow_done(cjson.decode(f[9]), id .. ':' .. f[3], '', fnow, q)
      end
    end
    local started = f[3] and f[7] == f[3]
    if f[2] == '0' and started then
      local err = cjson.encode({type = 'WorkerDiedError', message = ARGV[4], action = f[5] or ''})
      redis.call('HSET', jk, 'status', 'failed', 'ended_at', ARGV[2], 'exc_info',
        'WorkerDiedError: ' .. ARGV[4], 'sy_error', err)
      local ttl = tonumber(f[4]) or tonumber(ARGV[7])
      if ARGV[6] == '1' then  -- RQ's result stream too
        redis.call('XADD', 'rq:results:' .. id, 'MAXLEN', '10', '*', 'type', '2',
          'worker_name', ARGV[1], 'exc_string', ARGV[5])
        if ttl > 0 then redis.call('EXPIRE', 'rq:results:' .. id, ttl) end
      end
      if ttl > 0 then
        redis.call('EXPIRE', jk, ttl)
        redis.call('ZADD', 'rq:failed:' .. q, tonumber(ARGV[3]) + ttl, id)
      else
        redis.call('ZADD', 'rq:failed:' .. q, '+inf', id)
      end
      redis.call('PUBLISH', 'DONE_CHANNEL' .. id, 'failed')
      emit(ARGV[8], q, 'failed', id, f[5], 'error', err)
      if f[11] then wf_broken(f[11], id, 'failed', err, ARGV[2], ARGV[3], ARGV[8]) end
    elseif f[10] then  -- asked to stop: canceled, not run again
      redis.call('HSET', jk, 'status', 'queued')
      redis.call('HDEL', jk, 'started_at', 'worker_name', 'sy_exec', 'sy_run')
      stop_job(id, ARGV[2], ARGV[3], ARGV[8], false)
      if f[11] then
        local err = cjson.encode({type = 'JobCancelledError', action = f[5] or '',
          message = 'the job was cancelled'})
        wf_broken(f[11], id, 'canceled', err, ARGV[2], ARGV[3], ARGV[8])
      end
    else
      redis.call('HSET', jk, 'status', 'queued', 'enqueued_at', ARGV[2])
      if not started then  -- prefetched, never run: as it was before its dequeue
        local a = tonumber(redis.call('HGET', jk, 'sy_attempt'))
        if a and a > 0 then redis.call('HSET', jk, 'sy_attempt', a - 1) end
      end
      redis.call('HDEL', jk, 'started_at', 'worker_name', 'sy_exec', 'sy_run')
      requeue(id, q, f[8], true)
    end
    table.insert(out, id)
  end
end
redis.call('DEL', KEYS[1])
return out
""".replace("DONE_CHANNEL", DONE_CHANNEL)
)

# WATCH: the heartbeat thread's look at the long-running jobs of one queue (ARGV[3]), every
# half second while there are any.  ARGV: now (unix seconds), '1' to write the event stream,
# the queue, then (job id, action, progress JSON or '') triples.  Stores each new progress
# report (on the job, in the queue's progress set for `top`, as a 'progress' event) of a job
# that is still running, and returns the ids of those asked to stop (``sy_cancel``).
WATCH: Final = _script(
    """
local now, ev, q = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local stop = {}
for i = 4, #ARGV, 3 do
  local id, progress = ARGV[i], ARGV[i + 2]
  local jk = 'rq:job:' .. id
  local f = redis.call('HMGET', jk, 'status', 'sy_cancel')
  if f[1] == 'started' then
    if f[2] then table.insert(stop, id) end
    if progress ~= '' then
      redis.call('HSET', jk, 'sy_progress', progress)
      redis.call('ZADD', 'PROGRESS_PREFIX' .. q, now, id)
      emit(ev, q, 'progress', id, ARGV[i + 1], 'progress', progress)
    end
  end
end
-- reports of jobs whose worker died before their outcome: gone after an hour
redis.call('ZREMRANGEBYSCORE', 'PROGRESS_PREFIX' .. q, '-inf', now - 3600)
return stop
""".replace("PROGRESS_PREFIX", PROGRESS_PREFIX)
)
