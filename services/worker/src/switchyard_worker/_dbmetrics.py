"""Database metrics of a pool process: switchyard-db's numbers (pools, per-action queries) as
Prometheus metrics in the multiprocess files, and published to Redis for ``switchyard top``.

Read only when the process has imported switchyard_db (a job opened a database): a worker whose
actions use no database never imports psycopg for this. ChildMetrics calls :meth:`flush` with
its own, once a second.
"""

from __future__ import annotations

import sys
from typing import Any, Final, final

import switchyard_rq

__all__ = ["DbMetrics"]

_POOL_COUNTERS: Final = (("requests", "checkouts"), ("wait_seconds", "wait"), ("errors", "errors"))


@final
class DbMetrics:
    """Deltas of switchyard-db's cumulative numbers into Prometheus; the snapshot to Redis."""

    def __init__(self, name: str, prometheus: bool) -> None:
        self.name = name
        self._prometheus = prometheus
        self._prom: dict[str, Any] | None = None
        self._flushed: dict[tuple[str, ...], list[float]] = {}
        self._published: Any = None

    def flush(self, connection: Any) -> None:
        module = sys.modules.get("switchyard_db")
        if module is None:
            return
        snapshot = module.snapshot()
        if not snapshot["pools"] and not snapshot["queries"]:
            return
        if self._prometheus:
            self._to_prometheus(snapshot)
        marker = (snapshot["queries"], snapshot["pools"])
        if marker != self._published:
            switchyard_rq.publish_db_stats(connection, self.name, snapshot)
            self._published = marker

    def _to_prometheus(self, snapshot: dict[str, Any]) -> None:
        prom = self._prom
        if prom is None:
            prom = self._prom = _metrics(tuple(snapshot["buckets"]))
        for (database, action), row in snapshot["queries"].items():
            key = ("q", database, action)
            before = self._flushed.get(key) or [0.0] * len(row)
            queries = prom["queries"].labels(database, action)
            errors = prom["query_errors"].labels(database, action)  # served at 0 too
            if row[0] > before[0]:
                queries.inc(row[0] - before[0])
            if row[2] > before[2]:
                errors.inc(row[2] - before[2])
            child = prom["query_seconds"].labels(database, action)
            for i in range(3, len(row)):
                if row[i] > before[i]:
                    child._buckets[i - 3].inc(row[i] - before[i])
            if row[1] > before[1]:
                child._sum.inc(row[1] - before[1])
            self._flushed[key] = list(row)
        for pool in snapshot["pools"]:
            labels = (pool["database"], pool["role"])
            prom["connections"].labels(*labels, "in_use").set(pool["in_use"])
            prom["connections"].labels(*labels, "idle").set(pool["idle"])
            prom["max"].labels(*labels).set(pool["max"])
            prom["waiting"].labels(*labels).set(pool["waiting"])
            key = ("p", *labels)
            before = self._flushed.get(key) or [0.0, 0.0, 0.0]
            now = [float(pool[field]) for field, _ in _POOL_COUNTERS]
            if now[0] < before[0]:  # the pool was opened again (settings changed)
                before = [0.0, 0.0, 0.0]
            for (_, metric), value, old in zip(_POOL_COUNTERS, now, before, strict=True):
                counter = prom[metric].labels(*labels)  # served at 0 too
                if value > old:
                    counter.inc(value - old)
            self._flushed[key] = now


def _metrics(buckets: tuple[float, ...]) -> dict[str, Any]:
    from prometheus_client import Counter, Gauge, Histogram

    by_action = ["database", "action"]
    by_pool = ["database", "role"]
    return {
        "queries": Counter("switchyard_db_queries", "Statements run, by action", by_action),
        "query_errors": Counter(
            "switchyard_db_query_errors", "Statements that raised, by action", by_action
        ),
        "query_seconds": Histogram(
            "switchyard_db_query_seconds",
            "Statement time, seconds, by action",
            by_action,
            buckets=buckets,
        ),
        "connections": Gauge(
            "switchyard_db_pool_connections",
            "Pool connections of the pool processes, by state (in_use, idle)",
            [*by_pool, "state"],
            multiprocess_mode="livesum",
        ),
        "max": Gauge(
            "switchyard_db_pool_max",
            "The pools' bound (pool-size per process), summed over the pool processes",
            by_pool,
            multiprocess_mode="livesum",
        ),
        "waiting": Gauge(
            "switchyard_db_pool_waiting",
            "Jobs waiting for a free connection",
            by_pool,
            multiprocess_mode="livesum",
        ),
        "checkouts": Counter(
            "switchyard_db_pool_checkouts", "Connections handed out by the pools", by_pool
        ),
        "wait": Counter(
            "switchyard_db_pool_wait_seconds", "Time spent waiting for a connection", by_pool
        ),
        "errors": Counter(
            "switchyard_db_pool_errors",
            "Checkouts that failed (timeouts) and connection attempts that failed",
            by_pool,
        ),
    }
