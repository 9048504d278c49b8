"""Query monitoring: a count and a duration histogram per (database, action), a slow-query log
line with the statement's fingerprint (never its parameters), and the pools' own numbers.

Every connection handed out by a pool has :class:`Cursor` (or :class:`AsyncCursor`) as its
cursor factory, so every ``execute`` is timed; the action is the one whose ``ctx.db(...)`` handed
the connection out (a context variable). Counting costs a dict lookup and a few additions under a
lock; :func:`snapshot` returns cumulative values that the worker turns into Prometheus metrics and
publishes for ``switchyard top``.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, Final

import psycopg
from psycopg import sql

__all__ = [
    "BUCKETS",
    "AsyncCursor",
    "Cursor",
    "current",
    "fingerprint",
    "register_pool_source",
    "snapshot",
]

log = logging.getLogger("switchyard.db")

#: query duration buckets, seconds: 0.1 ms to 30 s, neighbours at most 2.5x apart
BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

#: (database, action, slow threshold in seconds) of the connection in use in this task/thread
current: contextvars.ContextVar[tuple[str, str, float | None] | None] = contextvars.ContextVar(
    "switchyard_db_current", default=None
)

_lock = threading.Lock()
# (database, action) -> [count, seconds, errors, bucket counts..., +Inf]
_queries: dict[tuple[str, str], list[float]] = {}
_pool_sources: dict[int, Callable[[], Iterable[dict[str, Any]]]] = {}

_LITERALS: Final = re.compile(
    r"'(?:[^']|'')*'|\$(\w*)\$.*?\$\1\$|\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b|\s+", re.DOTALL | re.I
)


@lru_cache(maxsize=2048)
def _normalize(text: str) -> str:
    def swap(match: re.Match[str]) -> str:
        return " " if match.group(0).isspace() else "?"

    return _LITERALS.sub(swap, text).strip()


def fingerprint(statement: str) -> tuple[str, str]:
    """``(fingerprint, normalized text)`` of a statement: literals become ``?``, whitespace one
    space, the fingerprint a hash of that. Placeholders stay placeholders: no parameter value is
    ever part of either."""
    text = _normalize(statement)
    return hashlib.sha1(text.encode()).hexdigest()[:12], text


def _text(query: Any, conn: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    if isinstance(query, sql.Composable):
        try:
            return query.as_string(conn)
        except Exception:  # never let monitoring fail a query
            return repr(query)
    return str(query)


def _record(query: Any, conn: Any, seconds: float, failed: bool) -> None:
    where = current.get()
    database, action, slow = where if where is not None else ("?", "-", None)
    key = (database, action)
    with _lock:
        row = _queries.get(key)
        if row is None:
            row = _queries[key] = [0.0] * (3 + len(BUCKETS) + 1)
        row[0] += 1
        row[1] += seconds
        if failed:
            row[2] += 1
        row[3 + bisect_left(BUCKETS, seconds)] += 1
    if slow is not None and seconds >= slow:
        digest, text = fingerprint(_text(query, conn))
        log.warning(
            "slow query on database %s (action %s): %.1f ms, fingerprint %s: %s",
            database,
            action,
            seconds * 1000,
            digest,
            text[:300],
        )


class Cursor(psycopg.Cursor[Any]):
    """A cursor that times every statement (see the module's docs)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        began = time.perf_counter()
        failed = True
        try:
            result = super().execute(query, params, **kwargs)
            failed = False
            return result
        finally:
            _record(query, self.connection, time.perf_counter() - began, failed)

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        began = time.perf_counter()
        failed = True
        try:
            super().executemany(query, params_seq, **kwargs)
            failed = False
        finally:
            _record(query, self.connection, time.perf_counter() - began, failed)


class AsyncCursor(psycopg.AsyncCursor[Any]):
    """The async form of :class:`Cursor`."""

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        began = time.perf_counter()
        failed = True
        try:
            result = await super().execute(query, params, **kwargs)
            failed = False
            return result
        finally:
            _record(query, self.connection, time.perf_counter() - began, failed)

    async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        began = time.perf_counter()
        failed = True
        try:
            await super().executemany(query, params_seq, **kwargs)
            failed = False
        finally:
            _record(query, self.connection, time.perf_counter() - began, failed)


def register_pool_source(key: int, source: Callable[[], Iterable[dict[str, Any]]] | None) -> None:
    """Add (or, with None, remove) a callable listing pools' numbers for :func:`snapshot`."""
    with _lock:
        if source is None:
            _pool_sources.pop(key, None)
        else:
            _pool_sources[key] = source


def snapshot() -> dict[str, Any]:
    """This process's numbers so far: ``queries`` {(database, action): [count, seconds, errors,
    bucket counts..., +Inf]} (cumulative) and ``pools``: one dict per open pool (``database``,
    ``role``, ``size``, ``max``, ``in_use``, ``idle``, ``waiting``, ``requests``, ``wait_seconds``
    and ``errors`` cumulative)."""
    with _lock:
        queries = {key: list(row) for key, row in _queries.items()}
        sources = list(_pool_sources.values())
    pools: list[dict[str, Any]] = []
    for source in sources:
        try:
            pools.extend(source())
        except Exception:  # a pool closing meanwhile
            continue
    return {"queries": queries, "pools": pools, "buckets": BUCKETS}


def pool_numbers(database: str, role: str, pool: Any) -> dict[str, Any]:
    """One pool's numbers, from psycopg_pool's ``get_stats()``."""
    stats = pool.get_stats()
    size = int(stats.get("pool_size", 0))
    idle = int(stats.get("pool_available", 0))
    return {
        "database": database,
        "role": role,
        "size": size,
        "max": int(stats.get("pool_max", 0)),
        "in_use": max(size - idle, 0),
        "idle": idle,
        "waiting": int(stats.get("requests_waiting", 0)),
        "requests": int(stats.get("requests_num", 0)),
        "wait_seconds": int(stats.get("requests_wait_ms", 0)) / 1000.0,
        "errors": int(stats.get("requests_errors", 0)) + int(stats.get("connections_errors", 0)),
    }
