"""Per-action job statistics: counted in memory by each consumer, published to Redis compactly
(so ``switchyard top`` works against a remote Redis) and read back for the live view.

Redis layout: ``switchyard:stats`` (set of consumer names), ``switchyard:stats:<name>`` (hash:
``<queue>\\x1f<action>`` -> JSON list of cumulative values, see :data:`FIELDS`; ``_ts`` -> unix
seconds; ``_last`` -> JSON ``{"<queue>\\x1f<action>": unix seconds}``, when each row last
changed, to the publishing second), with a TTL; ``switchyard:pools`` / ``switchyard:pool:<name>``
likewise for worker pools.
"""

from __future__ import annotations

import json
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, final

import redis

from switchyard_rq._observe import JobReport
from switchyard_rq._ops.flow import FlowState, flow_stats
from switchyard_rq._wire import keys

__all__ = [
    "BUCKETS",
    "JobStats",
    "StatsSnapshot",
    "publish_pool_stats",
    "read_snapshot",
]

#: histogram upper bounds (seconds) shared by the Prometheus metrics and ``switchyard top``:
#: 1 ms to 60 s, close enough together that p50/p95/p99 interpolate to within ~25 %
BUCKETS: Final = (
    0.001, 0.0015, 0.0025, 0.004, 0.006, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.15, 0.25,
    0.4, 0.6, 1.0, 1.5, 2.5, 4.0, 6.0, 10.0, 15.0, 25.0, 40.0, 60.0,
)  # fmt: skip
_NB: Final = len(BUCKETS) + 1  # the last counts what is above 60 s (+Inf)
#: the layout of one (queue, action) entry: counts, sums, then the two histograms' bucket counts
FIELDS: Final = ("succeeded", "failed", "retried", "run_sum", "wait_sum", "wait_count")
_RUN: Final = len(FIELDS)
_WAIT: Final = _RUN + _NB
_SIZE: Final = _WAIT + _NB
_OUTCOME: Final = {"succeeded": 0, "failed": 1, "retried": 2}
_SEP: Final = "\x1f"
STATS_SET: Final = "switchyard:stats"
POOLS_SET: Final = "switchyard:pools"

Key = tuple[str, str]  # (queue, action)


@final
class JobStats:
    """A :class:`JobObserver` that counts per (queue, action) in memory (a few microseconds a
    job); :meth:`snapshot` copies the cumulative values, :meth:`publish` writes them to Redis.

    A row is ``fields`` (counts and sums), then the run-time histogram's bucket counts, then the
    queue-wait histogram's, one per bound of ``buckets`` plus one for +Inf (not cumulative)."""

    __slots__ = ("_data", "_last", "_lock", "_runs")
    buckets: ClassVar[tuple[float, ...]] = BUCKETS
    fields: ClassVar[tuple[str, ...]] = FIELDS

    def __init__(self) -> None:
        self._data: dict[Key, list[float]] = {}
        self._lock = threading.Lock()
        # per row, the runs last published and when they last changed (stamped when published:
        # no clock read per job)
        self._runs: dict[Key, float] = {}
        self._last: dict[Key, float] = {}

    def job_done(self, report: JobReport) -> None:
        action, _, queue, _, outcome, seconds, waited, _ = report
        run_at = _RUN + bisect_left(BUCKETS, seconds)
        wait_at = -1 if waited is None else _WAIT + bisect_left(BUCKETS, waited)
        with self._lock:
            row = self._data.get((queue, action or "(bad job)"))
            if row is None:
                row = self._data[(queue, action or "(bad job)")] = [0.0] * _SIZE
            row[_OUTCOME[outcome]] += 1
            row[3] += seconds
            row[run_at] += 1
            if wait_at >= 0:
                row[4] += waited  # type: ignore[operator]
                row[5] += 1
                row[wait_at] += 1

    def snapshot(self) -> dict[Key, list[float]]:
        """The cumulative values per (queue, action), laid out as :data:`FIELDS` + buckets."""
        with self._lock:
            return {key: list(row) for key, row in self._data.items()}

    def publish(
        self,
        connection: redis.Redis,
        name: str,
        *,
        ttl: int = 30,
        rows: dict[Key, list[float]] | None = None,
    ) -> None:
        """Write the snapshot (or ``rows``, one taken before) under ``switchyard:stats:<name>``,
        in one round trip."""
        if rows is None:
            rows = self.snapshot()
        now = time.time()
        mapping: dict[Any, Any] = {"_ts": repr(now)}
        for row_key, row in rows.items():
            mapping[row_key[0] + _SEP + row_key[1]] = json.dumps([_compact(v) for v in row])
            runs = row[0] + row[1] + row[2]
            if self._runs.get(row_key) != runs:
                self._runs[row_key], self._last[row_key] = runs, now
        mapping["_last"] = json.dumps(
            {q + _SEP + a: round(t, 3) for (q, a), t in self._last.items()}
        )
        key = f"{STATS_SET}:{name}"
        with connection.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, ttl)
            pipe.sadd(STATS_SET, name)
            pipe.execute()


def _compact(value: float) -> float | int:
    return int(value) if value == int(value) else round(value, 6)


def publish_pool_stats(
    connection: redis.Redis, name: str, values: Mapping[str, float], *, ttl: int = 30
) -> None:
    """Write a worker pool's gauges (processes, busy, recycled...) under ``switchyard:pool:``."""
    key = f"switchyard:pool:{name}"
    mapping: dict[Any, Any] = {k: repr(float(v)) for k, v in values.items()}
    mapping["_ts"] = repr(time.time())
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, ttl)
        pipe.sadd(POOLS_SET, name)
        pipe.execute()


@dataclass(slots=True)
class StatsSnapshot:
    """What ``switchyard top`` / ``stats`` read in one go."""

    time: float
    #: consumer name -> (queue, action) -> cumulative values (:data:`FIELDS` + buckets)
    consumers: dict[str, dict[Key, list[float]]] = field(default_factory=dict)
    #: queue -> (depth, oldest age s, started/in flight, scheduled)
    queues: dict[str, tuple[int, float, int, int]] = field(default_factory=dict)
    #: pool name -> gauges
    pools: dict[str, dict[str, float]] = field(default_factory=dict)
    #: flow control now: concurrency limits and circuit breakers
    flow: list[FlowState] = field(default_factory=list)
    #: process name -> its database pools and query counts (see ``_ops.dbstats``)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: consumer name -> (queue, action) -> when its last job ended (unix s, to the second)
    last: dict[str, dict[Key, float]] = field(default_factory=dict)
    #: running jobs that reported progress, latest report first (see :func:`read_progress`)
    progress: list[dict[str, Any]] = field(default_factory=list)
    #: on a Redis Cluster: queue -> the node (host:port) that serves it now
    nodes: dict[str, str] = field(default_factory=dict)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def read_snapshot(connection: redis.Redis, queues: Iterable[str] | None = None) -> StatsSnapshot:
    """Read every live consumer's stats, every pool's gauges and the queues' state."""
    from switchyard_rq._consumer.recovery import queue_stats

    names = sorted(_text(n) for n in connection.smembers(STATS_SET))
    pools = sorted(_text(n) for n in connection.smembers(POOLS_SET))
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(f"{STATS_SET}:{name}")
        for name in pools:
            pipe.hgetall(f"switchyard:pool:{name}")
        replies = pipe.execute()
    snap = StatsSnapshot(time=time.time())
    gone: list[str] = []
    for name, reply in zip(names, replies[: len(names)], strict=True):
        if not reply:
            gone.append(name)
            continue
        rows: dict[Key, list[float]] = {}
        for raw_key, raw_value in reply.items():
            key = _text(raw_key)
            if key == "_last":
                snap.last[name] = _stamps(raw_value)
            if _SEP not in key:
                continue
            queue, action = key.split(_SEP, 1)
            try:
                row = [float(v) for v in json.loads(raw_value)]
            except (ValueError, TypeError):
                continue
            if len(row) == _SIZE:
                rows[(queue, action)] = row
        snap.consumers[name] = rows
    if gone:
        connection.srem(STATS_SET, *gone)
    for name, reply in zip(pools, replies[len(names) :], strict=True):
        if reply:
            snap.pools[name] = {_text(k): float(v) for k, v in reply.items()}
        else:
            connection.srem(POOLS_SET, name)
    if queues is None:
        queues = sorted(
            _text(q).removeprefix("rq:queue:") for q in connection.smembers("rq:queues")
        )
    for queue, stat in queue_stats(connection, list(queues)).items():
        snap.queues[queue] = (stat.depth, stat.oldest_age, stat.started, stat.scheduled)
        if stat.node:
            snap.nodes[queue] = stat.node
    snap.flow = flow_stats(connection)
    snap.progress = read_progress(connection, list(queues))
    from switchyard_rq._ops.dbstats import read_db_stats

    snap.databases = read_db_stats(connection)
    return snap


def read_progress(
    connection: redis.Redis, queues: list[str], *, per_queue: int = 10
) -> list[dict[str, Any]]:
    """The running jobs of ``queues`` that reported progress (at most ``per_queue`` a queue, the
    latest reports): id, queue, action and the report (done, total, message, at)."""
    from switchyard_rq._producer.handle import Progress

    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zrevrange(keys.progress(queue), 0, per_queue - 1)
        listed = pipe.execute()
    pairs = [(q, _text(i)) for q, ids in zip(queues, listed, strict=True) for i in ids]
    if not pairs:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for _, job_id in pairs:
            pipe.hmget(keys.job(job_id), "status", "description", "sy_progress")
        found = pipe.execute()
    rows = []
    for (queue, job_id), (status, action, raw) in zip(pairs, found, strict=True):
        report = Progress.from_json(raw) if raw and status == b"started" else None
        if report is not None:
            rows.append(
                {"id": job_id, "queue": queue, "action": _text(action or b""), **report.to_dict()}
            )
    rows.sort(key=lambda row: -float(row["at"]))
    return rows


def _stamps(raw: Any) -> dict[Key, float]:
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    stamps: dict[Key, float] = {}
    for key, when in found.items():
        if isinstance(key, str) and _SEP in key and isinstance(when, int | float):
            queue, action = key.split(_SEP, 1)
            stamps[(queue, action)] = float(when)
    return stamps


def quantile(buckets: list[float], q: float) -> float | None:
    """The ``q`` quantile of a histogram's (non-cumulative) bucket counts, interpolated
    linearly within the bucket as Prometheus' ``histogram_quantile`` does; None if empty."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(BUCKETS):
                return BUCKETS[-1]
            low = BUCKETS[index - 1] if index else 0.0
            high = BUCKETS[index]
            return low + (high - low) * (rank - seen) / count
        seen += count
    return BUCKETS[-1]


def run_buckets(row: list[float]) -> list[float]:
    return row[_RUN:_WAIT]


def wait_buckets(row: list[float]) -> list[float]:
    return row[_WAIT:_SIZE]
