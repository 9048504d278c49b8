"""Recovering the jobs of dead consumers, and the queue statistics an autoscaler reads."""

from __future__ import annotations

import zlib
from base64 import b64encode
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, final

import redis

from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import is_cluster, node_name, plain_queue, wire_queue
from switchyard_rq._wire.scripts import RECOVER

__all__ = [
    "NOT_IDEMPOTENT",
    "QueueStats",
    "died_text",
    "processing_lists",
    "queue_stats",
    "recover_orphans",
    "settle_consumer",
    "unregister",
]

NOT_IDEMPOTENT: Final = "worker died mid-run; action is not idempotent"


def died_text() -> str:
    """The failure of a non-idempotent job whose worker died, as RQ stores result texts."""
    return b64encode(zlib.compress(f"WorkerDiedError: {NOT_IDEMPOTENT}".encode())).decode()


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def recover_orphans(
    connection: redis.Redis,
    *,
    alive_names: Collection[str] | None = None,
    prefix: str | None = None,
) -> list[str]:
    """Give back the jobs held by dead consumers; return their ids.

    With ``alive_names`` given, the consumers it judges (all, or with ``prefix`` only those whose
    name starts with it) are dead exactly when it does not name them: a consumer named there is
    never dead, even if its heartbeat key is missing (it lapses during a Redis restart or a long
    pause, and the caller has just seen the process alive). Every other consumer is dead when its
    heartbeat key expired. A supervisor passes its live children and its own prefix, and leaves
    other machines' consumers to their heartbeats. Each job a dead consumer held goes back to the
    front of its queue; the job it was running (its ``sy_exec`` is the consumer's running mark),
    when its action is ``idempotent=False``, is failed instead with "worker died mid-run; action
    is not idempotent". Jobs it had prefetched but not started are always put back.
    """
    names = [_text(n) for n in connection.smembers(keys.CONSUMERS_SET)]
    if not names:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(keys.alive(name))
        beating = pipe.execute()
    settings = TransportSettings.from_env()
    recovered: list[str] = []
    for name, beats in zip(names, beating, strict=True):
        judged = alive_names is not None and (prefix is None or name.startswith(prefix))
        dead = (name not in alive_names) if judged else not beats  # type: ignore[operator]
        if dead:
            recovered += settle_consumer(connection, name, settings)
    return recovered


def processing_lists(connection: redis.Redis, name: str, queues: Sequence[str]) -> list[str]:
    """Consumer ``name``'s processing lists: one, or on a cluster one per queue (wire names)."""
    if is_cluster(connection):
        return [keys.processing(name, queue) for queue in queues]
    return [keys.processing(name)]


def settle_consumer(
    connection: redis.Redis,
    name: str,
    settings: TransportSettings,
    queues: Sequence[str] | None = None,
) -> list[str]:
    """Settle the jobs consumer ``name`` held as a dead consumer's (see RECOVER), one processing
    list at a time, then unregister it; returns the job ids. ``queues``: its queues (wire
    names), else read from its registration."""
    if queues is None:
        queues = sorted(_text(q) for q in connection.smembers(keys.consumer_queues(name)))
    now = datetime.now(UTC)
    streams = "1" if settings.rq_result_streams else "0"
    args = [name, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), now.timestamp(), NOT_IDEMPOTENT,
            died_text(), streams, settings.failure_ttl,
            "1" if settings.events else "0"]  # fmt: skip
    settled: list[str] = []
    for listing in processing_lists(connection, name, queues):
        settled += (_text(i) for i in RECOVER(connection, [listing], args))
    unregister(connection, name, queues)
    return settled


def unregister(connection: redis.Redis, name: str, queues: Sequence[str]) -> None:
    """Remove consumer ``name`` (serving ``queues``) from RQ's worker sets and hash, and its
    heartbeat, queue set and idle marks (one round trip; each key on its own: a cluster's keys
    live on many nodes)."""
    worker = keys.WORKER_PREFIX + name
    with connection.pipeline(transaction=False) as pipe:
        pipe.srem(keys.WORKERS_SET, worker)
        for queue in queues:
            pipe.srem(keys.WORKERS_BY_QUEUE + queue, worker)
            pipe.zrem(keys.idle(queue), name)
        for key in (worker, keys.alive(name), keys.consumer_queues(name)):
            pipe.delete(key)
        pipe.srem(keys.CONSUMERS_SET, name)
        pipe.execute()


@final
@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue now: waiting jobs, the age of the oldest (seconds, 0 when empty), scheduled
    (delayed or backing off) and started jobs."""

    name: str
    depth: int
    oldest_age: float
    scheduled: int
    started: int
    #: on a Redis Cluster, the node (``host:port``) that serves the queue now; else ""
    node: str = ""


def _parse(stamp: bytes | None) -> float | None:
    if not stamp:
        return None
    try:
        moment = datetime.strptime(stamp.decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC).timestamp()


def queue_stats(connection: redis.Redis, queues: Sequence[str]) -> dict[str, QueueStats]:
    """Depth (every priority), oldest-job age, scheduled and started counts of ``queues``, in
    two round trips. Keyed by the queues' own names (without a cluster's hash tag)."""
    cluster = is_cluster(connection)
    names = list(dict.fromkeys(wire_queue(q, cluster) for q in queues))
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            for key in keys.queue_lists(name):
                pipe.llen(key)
                pipe.lindex(key, 0)
            pipe.zcard(keys.SCHEDULED + name)
            pipe.zcard(keys.STARTED + name)
        replies = pipe.execute()
    per = 8  # replies per queue: (length, head) of its three lists, scheduled, started
    heads = [
        [h for h in replies[i * per + 1 : i * per + 6 : 2] if h is not None]
        for i in range(len(names))
    ]
    with connection.pipeline(transaction=False) as pipe:
        for found in heads:
            for head in found:
                pipe.hmget(keys.job(_text(head)), "enqueued_at", "created_at")
        stamps = iter(e or c for e, c in pipe.execute())
    now = datetime.now(UTC).timestamp()
    out: dict[str, QueueStats] = {}
    for i, name in enumerate(names):
        times = [t for t in (_parse(next(stamps)) for _ in heads[i]) if t is not None]
        base = i * per
        shown = plain_queue(name)
        out[shown] = QueueStats(
            name=shown,
            depth=int(replies[base]) + int(replies[base + 2]) + int(replies[base + 4]),
            oldest_age=max(now - min(times), 0.0) if times else 0.0,
            scheduled=int(replies[base + 6]),
            started=int(replies[base + 7]),
            node=node_name(connection, keys.queue(name)) if cluster else "",
        )
    return out
