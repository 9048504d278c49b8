"""Prometheus metrics across the pool's processes (prometheus_client's multiprocess mode).

Each pool process counts its jobs in memory (``switchyard_rq.JobStats``, a few microseconds a
job) and, once a second on a daemon thread, adds what changed to its multiprocess value files
and publishes the totals to Redis (for ``switchyard top``). The supervisor owns the files'
folder (created at start, removed at exit), marks dead processes with ``mark_process_dead`` and
serves ``/metrics``: every process's files plus its own pool and queue gauges.

prometheus_client is imported only here, and only in a worker that has metrics on.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, final

import switchyard_rq

if TYPE_CHECKING:
    from ._supervisor import Supervisor

__all__ = ["ChildMetrics", "MetricsDir", "PoolExposition"]

log = logging.getLogger("switchyard_worker.metrics")

FLUSH_INTERVAL: Final = 1.0
_OUTCOMES: Final = ("succeeded", "failed", "retried")  # the first three values of a stats row
#: label sets created per flush: each costs ~60 multiprocess values (file writes), so a pool
#: process that meets 45 actions at once spreads that over a few seconds instead of stalling
_NEW_PER_FLUSH: Final = 8
_STATS_TTL: Final = 30


@final
class MetricsDir:
    """The multiprocess folder: a fresh one under ``$PROMETHEUS_MULTIPROC_DIR`` (if set), else
    ``/dev/shm`` (memory: the files are written on every flush) or the system's temp folder, so
    that no earlier run's counters leak in; removed by :meth:`remove`."""

    __slots__ = ("path",)

    def __init__(self) -> None:
        parent = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        if parent is not None:
            os.makedirs(parent, exist_ok=True)
        elif os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
            parent = "/dev/shm"
        self.path = tempfile.mkdtemp(prefix="switchyard-metrics-", dir=parent)

    def mark_dead(self, pid: int | None) -> None:
        """Drop a dead process's live gauges (its counters and histograms stay counted)."""
        if pid is None:
            return
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# -- in a pool process ------------------------------------------------------------------------


def _pool_counts(connection: Any) -> tuple[int, int]:
    """(in use, idle) connections of a redis-py pool (its internals; (0, 0) if they change)."""
    pool = connection.connection_pool
    try:
        with pool._lock:
            created = len(pool._connections)
            queue = getattr(pool, "pool", None)
            if queue is not None:  # BlockingConnectionPool: idle ones wait in a LIFO queue
                idle = sum(1 for c in list(queue.queue) if c is not None)
            else:
                idle = len(pool._available_connections)
    except (AttributeError, TypeError):
        return 0, 0
    return max(created - idle, 0), idle


@final
class ChildMetrics:
    """A pool process's metrics: pass it to the Consumer as its observer, call :meth:`attach`
    with each consumer, :meth:`close` before exiting (a last flush).

    The flush runs in the job loop's own thread, between two jobs, once a second (a daemon
    thread takes over only while no job comes): a second thread flushing while jobs run would
    contend with the job loop for the GIL and the stats lock."""

    def __init__(self, name: str, metrics_dir: str | None, connection: Any) -> None:
        self.name = name
        self.stats = switchyard_rq.JobStats()
        self._connection = connection
        self._consumer: Any = None
        self._errors = self._reconnects = 0  # the attached consumer's counts, already added
        self._flushed: dict[tuple[str, str], list[float]] = {}
        self._children: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._published: dict[tuple[str, str], list[float]] | None = None
        self._republish = 0.0
        self._prom: dict[str, Any] | None = None
        if metrics_dir is not None:
            # prometheus_client picks its value class (mmap files) when first imported
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            self._prom = _child_metrics()
        from switchyard_worker._dbmetrics import DbMetrics

        self._db = DbMetrics(name, prometheus=self._prom is not None)
        self._next_flush = time.monotonic() + FLUSH_INTERVAL
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="switchyard-metrics", daemon=True)
        self._thread.start()

    def attach(self, consumer: Any) -> None:
        with self._lock:
            self._flush_redis_counts()
            self._consumer = consumer
            self._errors = self._reconnects = 0

    def job_done(self, report: switchyard_rq.JobReport) -> None:
        """The consumer's observer: count the job; flush if a second has passed."""
        self.stats.job_done(report)
        if time.monotonic() >= self._next_flush:
            self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            if time.monotonic() >= self._next_flush + FLUSH_INTERVAL:  # the job loop is idle
                self.flush()

    def flush(self) -> None:
        """Add what changed since the last flush to the value files; publish to Redis."""
        self._next_flush = time.monotonic() + FLUSH_INTERVAL
        with self._lock:
            rows = self.stats.snapshot()
            try:
                self._flush_prometheus(rows)
            except Exception:  # never let metrics take a worker down
                log.exception("cannot update the metrics files")
            try:
                self._db.flush(self._connection)
            except Exception as exc:
                log.debug("cannot flush database metrics: %s", exc)
            now = time.monotonic()
            if rows == self._published and now < self._republish:
                return  # nothing new: only refresh the TTL now and then
            try:
                self.stats.publish(self._connection, self.name, ttl=_STATS_TTL, rows=rows)
            except Exception as exc:
                log.debug("cannot publish job stats: %s", exc)
            else:
                self._published, self._republish = rows, now + _STATS_TTL / 3

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.flush()

    def _flush_redis_counts(self) -> None:
        consumer, prom = self._consumer, self._prom
        if consumer is None or prom is None:
            return
        errors, reconnects = consumer.redis_errors, consumer.reconnects
        if errors > self._errors:
            prom["redis_errors"].inc(errors - self._errors)
        if reconnects > self._reconnects:
            prom["reconnects"].inc(reconnects - self._reconnects)
        self._errors, self._reconnects = errors, reconnects
        in_use, idle = _pool_counts(consumer.connection)
        prom["connections"].labels("in_use").set(in_use)
        prom["connections"].labels("idle").set(idle)

    def _flush_prometheus(self, rows: dict[tuple[str, str], list[float]]) -> None:
        prom = self._prom
        if prom is None:
            return
        self._flush_redis_counts()
        width = len(switchyard_rq.JobStats.fields)
        budget = _NEW_PER_FLUSH
        for key, row in rows.items():
            old = self._flushed.get(key)
            if old == row:
                continue
            before = old or [0.0] * len(row)
            children = self._children.get(key)
            if children is None:
                if budget <= 0:
                    continue  # its counts wait for the next flush (they are cumulative)
                budget -= 1
                queue, action = key
                children = self._children[key] = (
                    *(prom["runs"].labels(queue, action, o) for o in _OUTCOMES),
                    prom["run"].labels(queue, action),
                    prom["wait"].labels(queue, action),
                )
            for index in range(3):
                if row[index] > before[index]:
                    children[index].inc(row[index] - before[index])
            n = (len(row) - width) // 2
            _add_histogram(children[3], row, before, 3, width, n)
            _add_histogram(children[4], row, before, 4, width + n, n)
            self._flushed[key] = row


def _add_histogram(
    child: Any, row: list[float], before: list[float], sum_at: int, start: int, n: int
) -> None:
    """Add bucket and sum deltas to a histogram child (prometheus_client's ``_buckets`` and
    ``_sum`` values: a histogram has no public "observe these counts" call)."""
    for i in range(n):
        delta = row[start + i] - before[start + i]
        if delta:
            child._buckets[i].inc(delta)
    delta_sum = row[sum_at] - before[sum_at]
    if delta_sum:
        child._sum.inc(delta_sum)


def _child_metrics() -> dict[str, Any]:
    from prometheus_client import Counter, Gauge, Histogram

    buckets = switchyard_rq.JobStats.buckets
    return {
        "runs": Counter(
            "switchyard_action_runs",
            "Action runs by outcome (succeeded, failed, retried)",
            ["queue", "action", "outcome"],
        ),
        "run": Histogram(
            "switchyard_action_run_seconds",
            "Action run time (handler and validation), seconds",
            ["queue", "action"],
            buckets=buckets,
        ),
        "wait": Histogram(
            "switchyard_job_wait_seconds",
            "Queue wait: from enqueue (or due time) to start, seconds",
            ["queue", "action"],
            buckets=buckets,
        ),
        "connections": Gauge(
            "switchyard_redis_connections",
            "Redis pool connections of the pool processes, by state (in_use, idle)",
            ["state"],
            multiprocess_mode="livesum",
        ),
        "redis_errors": Counter(
            "switchyard_redis_command_errors", "Redis commands that failed (then retried)"
        ),
        "reconnects": Counter("switchyard_redis_reconnects", "Reconnections to Redis"),
    }


# -- in the supervisor ------------------------------------------------------------------------


@final
class PoolExposition:
    """Renders ``/metrics``: every pool process's files plus the supervisor's gauges."""

    def __init__(self, supervisor: Supervisor, metrics_dir: MetricsDir) -> None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        self._registry = CollectorRegistry()
        MultiProcessCollector(self._registry, path=metrics_dir.path)  # type: ignore[no-untyped-call]
        self._registry.register(_SupervisorCollector(supervisor))

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self._registry), CONTENT_TYPE_LATEST


class _SupervisorCollector:
    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        sup = self._supervisor
        for name, (kind, text, value) in sup.metrics().items():
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(name, text, value=value)
        decisions = CounterMetricFamily(
            "switchyard_worker_scaling_decisions",
            "Autoscaler decisions that changed the pool size, by direction",
            labels=["direction"],
        )
        decisions.add_metric(["up"], sup.counters.scaled_up)
        decisions.add_metric(["down"], sup.counters.scaled_down)
        yield decisions
        stats = dict(sup.queue_stats)
        for name, text, field in _QUEUE_GAUGES:
            gauge = GaugeMetricFamily(name, text, labels=["queue"])
            for queue, stat in sorted(stats.items()):
                gauge.add_metric([queue], float(getattr(stat, field)))
            yield gauge
        if any(stat.node for stat in stats.values()):
            node = GaugeMetricFamily(
                "switchyard_queue_node",
                "1 for the Redis Cluster node (host:port) that serves the queue now",
                labels=["queue", "node"],
            )
            for queue, stat in sorted(stats.items()):
                node.add_metric([queue, stat.node], 1.0)
            yield node
        yield from _flow_metrics(list(sup.flow))


def _flow_metrics(flow: list[switchyard_rq.FlowState]) -> Iterator[Any]:
    """Flow control: each concurrency limit's leases in use and its limit, each breaker's state
    and how often it opened, and the jobs waiting on either."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    in_use = GaugeMetricFamily(
        "switchyard_concurrency_in_use", "Runs holding a slot of the limit", labels=["limit"]
    )
    limit = GaugeMetricFamily(
        "switchyard_concurrency_limit", "Runs allowed at once across every worker", labels=["limit"]
    )
    state = GaugeMetricFamily(
        "switchyard_breaker_state",
        "Circuit breaker state: 0 closed, 1 half-open (one probe runs), 2 open",
        labels=["action"],
    )
    opened = CounterMetricFamily(
        "switchyard_breaker_opened", "Times the circuit breaker opened", labels=["action"]
    )
    waiting = GaugeMetricFamily(
        "switchyard_flow_waiting",
        "Jobs deferred until a concurrency limit or a breaker lets them start",
        labels=["limit", "kind"],
    )
    for f in flow:
        if f.kind == "concurrency":
            in_use.add_metric([f.name], float(f.in_use or 0))
            limit.add_metric([f.name], float(f.limit or 0))
        else:
            state.add_metric([f.name], float(BREAKER_STATES.get(f.state or "closed", 0)))
            opened.add_metric([f.name], float(f.opened))
        waiting.add_metric([f.name, f.kind], float(f.waiting))
    yield from (in_use, limit, state, opened, waiting)


BREAKER_STATES: Final = {"closed": 0, "half-open": 1, "open": 2}
_QUEUE_GAUGES: Final = (
    ("switchyard_queue_depth", "Jobs waiting in the queue", "depth"),
    (
        "switchyard_queue_oldest_job_age_seconds",
        "Age of the oldest waiting job (0 when none waits)",
        "oldest_age",
    ),
    ("switchyard_queue_in_flight", "Jobs started and not ended", "started"),
    ("switchyard_queue_scheduled", "Jobs scheduled for later", "scheduled"),
)
