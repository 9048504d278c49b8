"""Redis key names: RQ's own layout, plus the few keys Switchyard adds (prefix ``switchyard:``).

The Lua scripts build some keys from a job id or queue name inside Redis; the functions that do
that are generated here (:data:`LUA_KEYS`), so that Python and Lua share one spelling.
"""

from __future__ import annotations

from typing import Final

DISPATCHER: Final = "switchyard_rq.dispatch"

JOB_PREFIX: Final = "rq:job:"
QUEUE_PREFIX: Final = "rq:queue:"
QUEUES_SET: Final = "rq:queues"
WORKERS_SET: Final = "rq:workers"
WORKER_PREFIX: Final = "rq:worker:"
WORKERS_BY_QUEUE: Final = "rq:workers:"
RESULTS_PREFIX: Final = "rq:results:"

STARTED: Final = "rq:wip:"
FINISHED: Final = "rq:finished:"
FAILED: Final = "rq:failed:"
SCHEDULED: Final = "rq:scheduled:"
CANCELED: Final = "rq:canceled:"

CONSUMERS_SET: Final = "switchyard:consumers"
IDEMPOTENCY_PREFIX: Final = "switchyard:key:"

#: jobs of high and low priority wait in lists of their own beside RQ's queue list (which holds
#: the normal ones, so that RQ's tools still see every job of a queue without priorities)
PRIORITY_SUFFIX: Final = {"high": ":high", "low": ":low"}
#: how a job hash records its priority (``sy_prio``); normal jobs have no such field
PRIORITY_CODE: Final = {"high": "h", "normal": "", "low": "l"}

#: a job's outcome is published on this channel + its id (waiters subscribe; no key is kept)
DONE_CHANNEL: Final = "switchyard:done:"
#: what a finished job's hash no longer needs (its result stays, with its data, times and queue:
#: RQ's ``Job.fetch`` needs the data)
FINISHED_DROPS: Final = (
    "timeout", "result_ttl", "failure_ttl", "last_heartbeat", "sy_exec",
    "sy_run", "sy_trace", "sy_flow", "sy_rated", "retry_intervals", "enqueued_at",
)  # fmt: skip
#: the most jobs a queue's finished registry keeps (the oldest go first; their results expire
#: on their own TTL)
FINISHED_MAX: Final = 10_000

#: flow control (see _wire/flow.py): limiter state lives under this prefix
FLOW_PREFIX: Final = "switchyard:flow:"
#: an HTTP gateway's per-client rate meters (see _wire/edge.py): this prefix + the client's id
EDGE_RATE_PREFIX: Final = "switchyard:edge:rate:"
#: the listings of a queue's limiters (see :func:`flow_registry`)
FLOW_REGISTRIES: Final = ("parked", "limits", "breakers")


#: a queue's job event stream (see :func:`events`) keeps about this many entries (MAXLEN ~)
EVENTS_MAXLEN: Final = 10_000
EVENTS_PREFIX: Final = "switchyard:events:"
#: the jobs of a queue that reported progress and have not ended (sorted set, by last report)
PROGRESS_PREFIX: Final = "switchyard:progress:"
#: a workflow's state (hash: status, stages, the current stage, what is left of it)
WORKFLOW_PREFIX: Final = "switchyard:wf:"


def job(job_id: str) -> str:
    return JOB_PREFIX + job_id


def queue(name: str) -> str:
    """RQ's list of a queue's (normal priority) waiting jobs."""
    return QUEUE_PREFIX + name


def queue_lists(name: str) -> tuple[str, str, str]:
    """The lists of a queue's waiting jobs, high, normal and low priority."""
    return (
        f"switchyard:queue:{name}:high",
        QUEUE_PREFIX + name,
        f"switchyard:queue:{name}:low",
    )


def queue_list(name: str, priority: str) -> str:
    """The list a job of ``priority`` (high, normal, low) waits in on queue ``name``."""
    suffix = PRIORITY_SUFFIX.get(priority)
    return f"switchyard:queue:{name}{suffix}" if suffix else QUEUE_PREFIX + name


def results(job_id: str) -> str:
    return RESULTS_PREFIX + job_id


def wake(queue_name: str) -> str:
    """The doorbell list of a queue: one token per pushed job wakes one idle consumer."""
    return "switchyard:wake:" + queue_name


def idle(queue_name: str) -> str:
    """The consumers waiting on a queue's doorbell (sorted set, scored by until when)."""
    return "switchyard:idle:" + queue_name


def processing(consumer: str, queue: str | None = None) -> str:
    """A consumer's processing list: the safety copy of the jobs it holds; on a cluster one per
    queue (``queue``, its wire name), in that queue's slot."""
    base = f"switchyard:consumer:{consumer}:processing"
    return base if queue is None else f"{base}:{queue}"


def alive(consumer: str) -> str:
    """A consumer's heartbeat key (expires when the consumer stops refreshing it)."""
    return f"switchyard:consumer:{consumer}:alive"


def consumer_queues(consumer: str) -> str:
    return f"switchyard:consumer:{consumer}:queues"


def idempotency(key: str, scope: str = "") -> str:
    """The key that holds the id of the job scheduled with idempotency key ``key``; on a cluster
    in the slot of the job's queue (``scope``: its wire name, so keys are per queue there)."""
    return f"{IDEMPOTENCY_PREFIX}{scope}:{key}" if scope else IDEMPOTENCY_PREFIX + key


#: the schedulers' lease (a string: the holder's fencing token, expiring) and the counter that
#: hands out fencing tokens (each new holder gets the next)
SCHEDULER_LEASE: Final = "switchyard:scheduler:lease"
SCHEDULER_FENCE: Final = "switchyard:scheduler:fence"
SCHEDULE_PREFIX: Final = "switchyard:schedule:"


def schedule(name: str) -> str:
    """A schedule's state (hash): ``last`` (every tick up to this unix time was handled),
    ``job``/``tick``/``fired_at`` (its last firing), ``pending`` (a tick held by overlap
    'queue'), ``paused``, and counts ``fired``, ``skipped``, ``missed``."""
    return SCHEDULE_PREFIX + name


def schedule_tick_key(name: str, tick: str) -> str:
    """The idempotency key (see :func:`idempotency`) of schedule ``name``'s firing at ``tick``
    (UTC, ``2026-12-05T03:00:00Z``; ``trigger-<ms>`` for a manual one)."""
    return f"schedule:{name}:{tick}"


def events(queue: str) -> str:
    """A queue's job event stream: scheduled, started, progress, succeeded, failed, retried,
    cancelled (fields ``event``, ``job``, ``action`` and what the event adds), MAXLEN ~
    :data:`EVENTS_MAXLEN`; one per queue, so that on a cluster it lives in the queue's slot."""
    return EVENTS_PREFIX + queue


def progress(queue: str) -> str:
    return PROGRESS_PREFIX + queue


def workflow(workflow_id: str) -> str:
    return WORKFLOW_PREFIX + workflow_id


def flow_registry(kind: str, queue: str) -> str:
    """A listing of queue ``queue``'s limiters, for the sweep, top, stats and metrics:
    ``parked`` (hash: limiter key -> ``c:<limit>`` or ``b``, those some of its jobs wait on),
    ``limits`` (hash: concurrency limiter key, not per key value -> its limit) or ``breakers``
    (set: the circuit breakers' keys that ever opened)."""
    return f"{FLOW_PREFIX}{kind}:{queue}"


#: Lua: the key functions every script shares (pasted at the top of each script)
LUA_KEYS: Final = f"""
local function qkey(q, p)
  if p == '{PRIORITY_CODE["high"]}' then return 'switchyard:queue:' .. q .. '{PRIORITY_SUFFIX["high"]}' end
  if p == '{PRIORITY_CODE["low"]}' then return 'switchyard:queue:' .. q .. '{PRIORITY_SUFFIX["low"]}' end
  return '{QUEUE_PREFIX}' .. q
end
local function requeue(id, q, p, front)
  redis.call(front and 'LPUSH' or 'RPUSH', qkey(q, p), id)
  redis.call('RPUSH', 'switchyard:wake:' .. q, '1')
end
local function flowreg(kind, q) return '{FLOW_PREFIX}' .. kind .. ':' .. q end
-- a job event on the queue's stream (`on`: events are on), e.g. emit(ev, q, 'started', id, a)
local function emit(on, q, kind, id, action, ...)
  if on == '1' then
    redis.call('XADD', '{EVENTS_PREFIX}' .. q, 'MAXLEN', '~', {EVENTS_MAXLEN}, '*',
      'event', kind, 'job', id, 'action', action or '', ...)
  end
end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""  # noqa: E501 - Lua text, one rule a line
