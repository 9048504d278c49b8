"""Database numbers for ``switchyard top``: each pool process publishes its database pools and
per-action query counts (switchyard-db's ``snapshot()``, when it has opened a database) to
Redis; ``top`` reads them back and shows pool utilization and query rates.

Redis layout: ``switchyard:dbstats`` (set of process names), ``switchyard:dbstats:<name>``
(hash, with a TTL): ``p<US>database<US>role`` -> JSON ``[size, max, in_use, waiting, requests,
wait_seconds, errors]``; ``q<US>database<US>action`` -> JSON ``[count, seconds, errors, bucket
counts...]``; ``_buckets`` -> the query histogram's bounds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Final

import redis

__all__ = ["DB_SET", "db_view", "publish_db_stats", "read_db_stats"]

DB_SET: Final = "switchyard:dbstats"
_SEP: Final = "\x1f"
POOL_FIELDS: Final = ("size", "max", "in_use", "waiting", "requests", "wait_seconds", "errors")


def publish_db_stats(
    connection: redis.Redis, name: str, snapshot: Mapping[str, Any], *, ttl: int = 30
) -> None:
    """Write a process's switchyard-db ``snapshot()`` under ``switchyard:dbstats:<name>``."""
    mapping: dict[Any, Any] = {
        "_ts": repr(time.time()),
        "_buckets": json.dumps(snapshot["buckets"]),
    }
    for pool in snapshot["pools"]:
        key = _SEP.join(("p", pool["database"], pool["role"]))
        mapping[key] = json.dumps([pool[f] for f in POOL_FIELDS])
    for (database, action), row in snapshot["queries"].items():
        mapping[_SEP.join(("q", database, action))] = json.dumps([round(v, 6) for v in row])
    key = f"{DB_SET}:{name}"
    with connection.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, ttl)
        pipe.sadd(DB_SET, name)
        pipe.execute()


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def read_db_stats(connection: redis.Redis) -> dict[str, dict[str, Any]]:
    """Every live process's published database numbers: name -> {"pools": {(database, role):
    [...]}, "queries": {(database, action): [...]}, "buckets": [...]}."""
    names = sorted(_text(n) for n in connection.smembers(DB_SET))
    if not names:
        return {}
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(f"{DB_SET}:{name}")
        replies = pipe.execute()
    found: dict[str, dict[str, Any]] = {}
    gone = []
    for name, reply in zip(names, replies, strict=True):
        if not reply:
            gone.append(name)
            continue
        entry: dict[str, Any] = {"pools": {}, "queries": {}, "buckets": []}
        for raw_key, raw_value in reply.items():
            key = _text(raw_key)
            try:
                value = json.loads(raw_value)
            except ValueError:
                continue
            if key == "_buckets":
                entry["buckets"] = value
            elif key.startswith("p" + _SEP):
                _, database, role = key.split(_SEP, 2)
                entry["pools"][(database, role)] = value
            elif key.startswith("q" + _SEP):
                _, database, action = key.split(_SEP, 2)
                entry["queries"][(database, action)] = value
        found[name] = entry
    if gone:
        connection.srem(DB_SET, *gone)
    return found


def _quantile(buckets: list[float], bounds: list[float], q: float) -> float | None:
    total = sum(buckets)
    if total <= 0 or not bounds:
        return None
    rank, seen = q * total, 0.0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(bounds):
                return bounds[-1]
            low = bounds[index - 1] if index else 0.0
            return low + (bounds[index] - low) * (rank - seen) / count
        seen += count
    return bounds[-1]


def db_view(
    old: Mapping[str, dict[str, Any]], new: Mapping[str, dict[str, Any]], span: float
) -> dict[str, Any]:
    """Pools summed over processes (in use of max, waiting, mean wait per checkout and errors
    over the window) and query rates per (database, action) with mean and p95 time."""
    pools: dict[tuple[str, str], dict[str, float]] = {}
    queries: dict[tuple[str, str], list[float]] = {}
    bounds: list[float] = []
    for name, entry in new.items():
        before = old.get(name, {"pools": {}, "queries": {}})
        bounds = entry["buckets"] or bounds
        for key, row in entry["pools"].items():
            acc = pools.setdefault(
                key, {"processes": 0, **dict.fromkeys(POOL_FIELDS, 0.0), "window_requests": 0.0,
                      "window_wait": 0.0, "window_errors": 0.0}
            )  # fmt: skip
            acc["processes"] += 1
            for field, value in zip(POOL_FIELDS, row, strict=False):
                acc[field] += value
            prev = before["pools"].get(key, [0.0] * len(row))
            if prev[4] > row[4]:  # a new process under an old name
                prev = [0.0] * len(row)
            acc["window_requests"] += row[4] - prev[4]
            acc["window_wait"] += row[5] - prev[5]
            acc["window_errors"] += row[6] - prev[6]
        for key, row in entry["queries"].items():
            prev = before["queries"].get(key)
            if prev is None or prev[0] > row[0] or len(prev) != len(row):
                prev = [0.0] * len(row)
            acc_q = queries.setdefault(key, [0.0] * len(row))
            for i, (a, b) in enumerate(zip(row, prev, strict=True)):
                acc_q[i] += a - b
    pool_rows = [
        {
            "database": database,
            "role": role,
            "processes": int(p["processes"]),
            "in_use": int(p["in_use"]),
            "size": int(p["size"]),
            "max": int(p["max"]),
            "waiting": int(p["waiting"]),
            "checkouts_per_s": p["window_requests"] / span,
            "mean_wait": p["window_wait"] / p["window_requests"] if p["window_requests"] else 0.0,
            "errors": int(p["errors"]),
            "new_errors": int(p["window_errors"]),
        }
        for (database, role), p in sorted(pools.items())
    ]
    query_rows = [
        {
            "database": database,
            "action": action,
            "rate": row[0] / span,
            "mean": row[1] / row[0] if row[0] else None,
            "p95": _quantile(row[3:], bounds, 0.95),
            "errors": int(row[2]),
        }
        for (database, action), row in sorted(queries.items())
        if row[0] > 0
    ]
    return {"pools": pool_rows, "queries": query_rows}
