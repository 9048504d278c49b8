"""The numbers ``switchyard top``, ``switchyard stats --json`` and the gateway's dashboard show:
what two snapshots of Redis (:func:`~switchyard_rq._ops.stats.read_snapshot`) say about queues,
actions, workers, flow control and databases."""

from __future__ import annotations

from typing import Any

from switchyard_rq._ops.dbstats import db_view
from switchyard_rq._ops.stats import StatsSnapshot, quantile, run_buckets

__all__ = ["build_view"]


def _delta(old: StatsSnapshot, new: StatsSnapshot) -> dict[tuple[str, str], list[float]]:
    """Per (queue, action), what the consumers did between the two snapshots."""
    out: dict[tuple[str, str], list[float]] = {}
    for name, rows in new.consumers.items():
        before = old.consumers.get(name, {})
        for key, row in rows.items():
            prev = before.get(key)
            if prev is None or prev[0] > row[0] or prev[1] > row[1]:  # new, or restarted
                prev = [0.0] * len(row)
            acc = out.setdefault(key, [0.0] * len(row))
            for i, (a, b) in enumerate(zip(row, prev, strict=True)):
                acc[i] += a - b
    return out


def build_view(old: StatsSnapshot, new: StatsSnapshot, redis_text: str) -> dict[str, Any]:
    """The numbers ``top`` shows and ``stats --json`` prints."""
    span = max(new.time - old.time, 1e-3)
    delta = _delta(old, new)
    actions = []
    out_by_queue: dict[str, float] = {}
    for (queue, action), row in sorted(delta.items()):
        runs = row[0] + row[1] + row[2]
        out_by_queue[queue] = out_by_queue.get(queue, 0.0) + runs
        totals = [0.0] * len(row)  # every run of the live consumers, not just this window's
        stamps = []
        for name, rows in new.consumers.items():
            full = rows.get((queue, action))
            if full is not None:
                totals = [t + v for t, v in zip(totals, full, strict=True)]
            stamp = new.last.get(name, {}).get((queue, action))
            if stamp is not None:
                stamps.append(stamp)
        # no job ended in the window: the last known figures (over every run), with their age
        buckets = run_buckets(row if runs else totals)
        actions.append(
            {
                "queue": queue,
                "action": action,
                "rate": runs / span,
                "p50": quantile(buckets, 0.50),
                "p95": quantile(buckets, 0.95),
                "p99": quantile(buckets, 0.99),
                "percentiles_over": "window" if runs else "all runs",
                "last_job_age": max(new.time - max(stamps), 0.0) if stamps else None,
                "error_rate": (row[1] + row[2]) / runs if runs else 0.0,
                "succeeded": int(totals[0]),
                "failed": int(totals[1]),
                "retried": int(totals[2]),
            }
        )
    queues: list[dict[str, Any]] = []
    for queue, (depth, age, in_flight, scheduled) in sorted(new.queues.items()):
        rate_out = out_by_queue.get(queue, 0.0) / span
        before = old.queues.get(queue)
        grew = 0.0
        if before is not None:
            grew = (depth + in_flight) - (before[0] + before[2])
        queues.append(
            {
                "queue": queue,
                "node": new.nodes.get(queue, ""),
                "depth": depth,
                "oldest_age": age,
                "in_flight": in_flight,
                "scheduled": scheduled,
                "rate_in": max(rate_out + grew / span, 0.0),
                "rate_out": rate_out,
            }
        )
    pools: list[dict[str, Any]] = []
    processes = recycled = 0.0
    for name, gauges in sorted(new.pools.items()):
        pools.append({"name": name, **{k: v for k, v in gauges.items() if k != "_ts"}})
        processes += gauges.get("processes", 0.0)
        recycled += gauges.get("recycled", 0.0)
    workers = {
        "pools": len(pools),
        "processes": int(processes),
        "busy": int(sum(int(q["in_flight"]) for q in queues)),
        "recycled": int(recycled),
        "consumers": len(new.consumers),
    }
    return {
        "time": new.time,
        "window": span,
        "redis": redis_text,
        "queues": queues,
        "actions": actions,
        "workers": workers,
        "pools": pools,
        "flow": [state.to_dict() for state in new.flow],
        "progress": new.progress,
        "databases": db_view(old.databases, new.databases, span),
    }
