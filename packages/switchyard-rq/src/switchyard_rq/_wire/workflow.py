"""The Lua that moves a workflow on (see _producer/workflow.py), shared by the scripts that end
jobs: STEP (a step's outcome), RECOVER (a dead worker's step), CANCEL and WF_CANCEL.

A workflow is a list of stages, each a list of jobs (one for a chain's step, several for a
group). Every job of every stage is written when the workflow is created: those of stage 0 are
queued, the others wait as ``deferred``. When the last job of a stage succeeds, the script that
stores that outcome hands the stage's output to the next stage's jobs and queues them, in the
same atomic call: a crash between two steps loses nothing and runs nothing twice.

The workflow's hash (``switchyard:wf:<id>``): ``status`` (running, succeeded, failed,
canceled), ``n`` (stages), ``stage`` (the current one), ``left`` (its jobs not succeeded yet),
``s<k>`` (stage k's job ids, JSON), ``g<k>`` (present: stage k is a group, its output is the
list of its jobs' outputs), ``policy`` (on a step's failure, ``cancel`` or ``keep`` the other
jobs of its stage), ``ttl``, ``error`` and ``failed`` (the step that broke it), timestamps.
A job of a workflow has ``sy_wf`` (the workflow's id); a later stage's job may have
``sy_fixed``, its own data (a JSON object) that the previous stage's output is merged with.

Single server only: the scripts touch the keys of every queue a workflow's steps route to. On a
Redis Cluster each script must stay in one slot, so a step on another queue's slot would need a
second hop (an outbox in the workflow's slot, drained by the worker that stored the outcome).
"""

from __future__ import annotations

from typing import Final

from switchyard_rq._wire.keys import DISPATCHER, DONE_CHANNEL, WORKFLOW_PREFIX

__all__ = ["LUA_WF"]

#: the failure TTL of a canceled job whose hash names none (RQ's default)
CANCELED_TTL: Final = 604_800

LUA_WF: Final = (
    """
-- Cancels job `id` if it has not started (queued, scheduled, deferred, parked by a limiter;
-- with `lrem` it also leaves its queue's list, else the dequeue drops it), or asks it to stop
-- if it is running (its worker notices: ``sy_cancel``).  Returns 1 canceled, 2 asked to stop,
-- 0 ended already, -1 no such job.
local function stop_job(id, stamp, ts, ev, lrem)
  local jk = 'rq:job:' .. id
  local h = redis.call('HMGET', jk, 'status', 'origin', 'failure_ttl', 'sy_prio', 'sy_flow',
    'description')
  if not h[1] then return -1 end
  if h[1] == 'queued' or h[1] == 'scheduled' or h[1] == 'deferred' then
    local q = h[2] or ''
    if lrem then redis.call('LREM', qkey(q, h[4]), 0, id) end
    redis.call('ZREM', 'rq:scheduled:' .. q, id)
    if h[5] then  -- parked by a limiter
      for _, d in ipairs(cjson.decode(h[5])) do
        redis.call('ZREM', d[2] .. ':parked', id)
      end
    end
    redis.call('HSET', jk, 'status', 'canceled', 'ended_at', stamp)
    redis.call('PUBLISH', 'DONE_CHANNEL' .. id, 'canceled')
    local ttl = tonumber(h[3]) or CANCELED_TTL
    if ttl > 0 then
      redis.call('EXPIRE', jk, ttl)
      redis.call('ZADD', 'rq:canceled:' .. q, tonumber(ts) + ttl, id)
    else
      redis.call('ZADD', 'rq:canceled:' .. q, '+inf', id)
    end
    emit(ev, q, 'cancelled', id, h[6])
    return 1
  end
  if h[1] == 'started' then
    redis.call('HSET', jk, 'sy_cancel', '1')
    return 2
  end
  return 0
end

local function wf_end(w, status, stamp)
  local wk = 'WF_PREFIX' .. w
  redis.call('HSET', wk, 'status', status, 'ended_at', stamp)
  local ttl = tonumber(redis.call('HGET', wk, 'ttl')) or 0
  if ttl > 0 then redis.call('EXPIRE', wk, ttl) end
  redis.call('PUBLISH', 'DONE_CHANNEL' .. w, status)
end

-- Workflow w is over with `status` (failed, canceled) because of job `id` (none: '') and its
-- error `err` (JSON): the jobs of later stages are canceled, and those of the current stage
-- too when its policy is 'cancel' (queued ones canceled, running ones asked to stop).
local function wf_broken(w, id, status, err, stamp, ts, ev)
  local wk = 'WF_PREFIX' .. w
  local g = redis.call('HMGET', wk, 'status', 'stage', 'n', 'policy')
  if g[1] ~= 'running' then return 0 end
  redis.call('HSET', wk, 'error', err, 'failed', id)
  local stage = tonumber(g[2])
  for k = stage, tonumber(g[3]) - 1 do
    if k > stage or g[4] == 'cancel' or id == '' then
      for _, j in ipairs(cjson.decode(redis.call('HGET', wk, 's' .. k))) do
        if j ~= id then stop_job(j, stamp, ts, ev, false) end
      end
    end
  end
  wf_end(w, status, stamp)
  return 1
end

-- Job `id` of workflow w succeeded with `result` (its output's JSON): when it was the last of
-- its stage, the next stage's jobs get the stage's output (merged with their own data) and
-- are queued; after the last stage the workflow succeeded.
local function wf_ok(w, id, result, stamp, ev)
  local wk = 'WF_PREFIX' .. w
  if redis.call('HGET', wk, 'status') ~= 'running' then return end
  if redis.call('HINCRBY', wk, 'left', -1) > 0 then return end
  local stage = tonumber(redis.call('HGET', wk, 'stage')) + 1
  local nxt = redis.call('HGET', wk, 's' .. stage)
  if not nxt then
    wf_end(w, 'succeeded', stamp)
    return
  end
  local feed = result
  if redis.call('HEXISTS', wk, 'g' .. (stage - 1)) == 1 then  -- a group's output: a list
    local parts = {}
    for i, j in ipairs(cjson.decode(redis.call('HGET', wk, 's' .. (stage - 1)))) do
      parts[i] = (j == id) and result or redis.call('HGET', 'rq:job:' .. j, 'sy_result') or 'null'
    end
    feed = '{"results":[' .. table.concat(parts, ',') .. ']}'
  end
  local ids = cjson.decode(nxt)
  redis.call('HSET', wk, 'stage', stage, 'left', #ids)
  for _, j in ipairs(ids) do
    local jk = 'rq:job:' .. j
    local g = redis.call('HMGET', jk, 'status', 'description', 'sy_fixed', 'origin', 'sy_prio')
    if g[1] == 'deferred' then
      local payload = feed
      if g[3] and g[3] ~= '{}' then  -- its own data, after the output's (its own wins)
        if payload == '{}' then payload = g[3]
        else payload = string.sub(payload, 1, -2) .. ',' .. string.sub(g[3], 2) end
      end
      redis.call('HSET', jk, 'data', 'DATA_HEAD' .. cjson.encode(g[2]) .. ','
        .. cjson.encode(payload) .. '],{}]', 'status', 'queued', 'enqueued_at', stamp)
      requeue(j, g[4], g[5], false)
      emit(ev, g[4], 'scheduled', j, g[2], 'workflow', w)
    end
  end
end
""".replace("DONE_CHANNEL", DONE_CHANNEL)
    .replace("WF_PREFIX", WORKFLOW_PREFIX)
    .replace("CANCELED_TTL", str(CANCELED_TTL))
    .replace("DATA_HEAD", f'["{DISPATCHER}",null,[')
)
