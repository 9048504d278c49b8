"""A consumer's registration in Redis: RQ's worker hash and sets, the heartbeat, lease renewal.

Every key here stands on its own (no script reads two of them), so on a Redis Cluster each
command goes to the node of its key; the pipelines below are split per node by the cluster
client. :func:`~switchyard_rq._consumer.recovery.unregister` undoes :func:`register`.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import redis

from switchyard_rq._consumer.source import Job, WorkerCounts
from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import is_cluster
from switchyard_rq._wire.scripts import RENEW

__all__ = ["LEASE_SECONDS", "beat", "register", "renew"]

#: a concurrency lease lapses this long after its worker last renewed it (a dead worker's slot
#: comes back within this time even when nobody recovers its jobs)
LEASE_SECONDS: Final = 6.0


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def register(connection: redis.Redis, name: str, queues: Sequence[str], ttl: int) -> None:
    """Register consumer ``name`` serving ``queues`` as an RQ worker, with a fresh heartbeat."""
    stamp = _stamp()
    worker = keys.WORKER_PREFIX + name
    with connection.pipeline(transaction=False) as pipe:
        pipe.delete(worker)
        pipe.hset(
            worker,
            mapping={
                "birth": stamp,
                "last_heartbeat": stamp,
                "queues": ",".join(queues),
                "pid": os.getpid(),
                "hostname": socket.gethostname(),
                "ip_address": "",
                "version": "switchyard-rq",
                "python_version": "",
                "state": "idle",
            },
        )
        pipe.sadd(keys.WORKERS_SET, worker)
        for queue in queues:
            pipe.sadd(keys.WORKERS_BY_QUEUE + queue, worker)
            pipe.sadd(keys.QUEUES_SET, keys.queue(queue))
        pipe.sadd(keys.consumer_queues(name), *queues)
        pipe.sadd(keys.CONSUMERS_SET, name)
        _beat_commands(pipe, name, stamp, ttl, WorkerCounts())
        pipe.execute()


def beat(connection: redis.Redis, name: str, ttl: int, counts: WorkerCounts) -> None:
    """Refresh ``switchyard:consumer:<name>:alive`` and the RQ worker hash's TTL; add
    ``counts`` (what the consumer did since its last beat) to the worker hash."""
    with connection.pipeline(transaction=False) as pipe:
        _beat_commands(pipe, name, _stamp(), ttl, counts)
        pipe.execute()


def _beat_commands(pipe: Any, name: str, stamp: str, ttl: int, counts: WorkerCounts) -> None:
    worker = keys.WORKER_PREFIX + name
    pipe.set(keys.alive(name), stamp, ex=ttl)
    state = "busy" if counts.succeeded or counts.failed else "idle"  # for `rq info`
    pipe.hset(worker, mapping={"last_heartbeat": stamp, "state": state})
    if counts.succeeded:
        pipe.hincrby(worker, "successful_job_count", counts.succeeded)
    if counts.failed:
        pipe.hincrby(worker, "failed_job_count", counts.failed)
    if counts.busy_seconds:
        pipe.hincrbyfloat(worker, "total_working_time", counts.busy_seconds)
    pipe.expire(worker, ttl + 60)
    pipe.expire(keys.consumer_queues(name), ttl + 86_400)


def renew(connection: redis.Redis, jobs: Sequence[Job]) -> None:
    """Extend the concurrency leases these running jobs hold: one call, or on a cluster one per
    queue (a queue's limiters live in its slot)."""
    groups: dict[str, list[str]] = {}
    for job in jobs:
        for key in _lease_keys(job.flow):
            groups.setdefault(job.queue, []).extend((key, f"{job.id}:{job.execution}"))
    if not groups:
        return
    if not is_cluster(connection):
        RENEW(connection, [], [LEASE_SECONDS, *(p for pairs in groups.values() for p in pairs)])
        return
    for pairs in groups.values():  # the first lease key routes the call to its queue's node
        RENEW(connection, [pairs[0]], [LEASE_SECONDS, *pairs])


_LEASES: dict[bytes, tuple[str, ...]] = {}


def _lease_keys(flow: bytes | None) -> tuple[str, ...]:
    """The concurrency limiters' keys among a job's flow directives (cached: jobs of one action
    and key share them)."""
    if not flow:
        return ()
    found = _LEASES.get(flow)
    if found is None:
        found = tuple(d[1] for d in _directives(flow) if d[0] == "c")
        if len(_LEASES) > 4096:
            _LEASES.clear()
        _LEASES[flow] = found
    return found


def _directives(flow: bytes) -> Iterator[list[Any]]:
    try:
        loaded = json.loads(flow)
    except ValueError:
        return
    if isinstance(loaded, list):
        yield from (d for d in loaded if isinstance(d, list) and len(d) >= 2)
