"""Redis key names: RQ's own layout, plus the few keys Switchyard adds (prefix ``switchyard:``)."""

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


def job(job_id: str) -> str:
    return JOB_PREFIX + job_id


def queue(name: str) -> str:
    return QUEUE_PREFIX + name


def results(job_id: str) -> str:
    return RESULTS_PREFIX + job_id


def wake(queue_name: str) -> str:
    """The doorbell list of a queue: one token per pushed job wakes one idle consumer."""
    return "switchyard:wake:" + queue_name


def idle(queue_name: str) -> str:
    """The consumers waiting on a queue's doorbell (sorted set, scored by until when)."""
    return "switchyard:idle:" + queue_name


def processing(consumer: str) -> str:
    """A consumer's processing list: the safety copy of the job it is running."""
    return f"switchyard:consumer:{consumer}:processing"


def alive(consumer: str) -> str:
    """A consumer's heartbeat key (expires when the consumer stops refreshing it)."""
    return f"switchyard:consumer:{consumer}:alive"


def consumer_queues(consumer: str) -> str:
    return f"switchyard:consumer:{consumer}:queues"


def idempotency(key: str) -> str:
    return IDEMPOTENCY_PREFIX + key
