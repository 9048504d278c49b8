"""What flow control is doing now: concurrency limits in use, jobs waiting on them, circuit
breakers' states. Read by ``switchyard top``/``stats`` and the worker's ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, final

import redis

from switchyard_rq._wire import keys
from switchyard_rq._wire.keys import FLOW_PREFIX

__all__ = ["FlowState", "flow_stats"]


@final
@dataclass(frozen=True, slots=True)
class FlowState:
    """One limiter now. ``name`` is the action (``action:key`` for a limit per key value);
    ``kind`` is ``concurrency`` (``in_use`` of ``limit`` leases) or ``breaker`` (``state``
    closed, open or half-open; ``opened`` times so far; ``probe_in`` seconds until the next probe
    may run while open). ``waiting``: jobs deferred until it lets them start."""

    name: str
    kind: str
    waiting: int
    limit: int | None = None
    in_use: int | None = None
    state: str | None = None
    opened: int = 0
    probe_in: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "waiting": self.waiting,
            "limit": self.limit,
            "in_use": self.in_use,
            "state": self.state,
            "opened": self.opened,
            "probe_in": self.probe_in,
        }


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _name(key: str) -> str:
    """``switchyard:flow:c:geo.distance:t42`` -> ``geo.distance:t42`` (on a cluster the key has
    its queue's tag, ``c:{default}:geo.distance``: the same name)."""
    name = key.removeprefix(FLOW_PREFIX)[2:]
    if name.startswith("{"):
        name = name.partition("}:")[2]
    return name


def flow_stats(connection: redis.Redis) -> list[FlowState]:
    """Every concurrency limit and circuit breaker in use, and every limiter jobs wait on, over
    every queue RQ knows (four round trips; a cluster pipelines no TIME)."""
    queues_raw = connection.smembers(keys.QUEUES_SET)
    now_raw = connection.time()
    now = float(now_raw[0]) + float(now_raw[1]) / 1e6
    queues = sorted(_text(q).removeprefix(keys.QUEUE_PREFIX) for q in queues_raw)
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.hgetall(keys.flow_registry("limits", queue))
            pipe.smembers(keys.flow_registry("breakers", queue))
            pipe.hgetall(keys.flow_registry("parked", queue))
        listed = pipe.execute()
    limits: dict[str, int] = {}
    parked: dict[str, str] = {}
    tripped: set[str] = set()
    for i in range(len(queues)):
        limits.update((_text(k), int(v)) for k, v in listed[3 * i].items())
        tripped.update(_text(k) for k in listed[3 * i + 1])
        parked.update((_text(k), _text(v)) for k, v in listed[3 * i + 2].items())
    for key, kind in parked.items():  # limits per key value appear while jobs wait on them
        if kind.startswith("c:"):
            limits.setdefault(key, int(kind[2:]))
    breakers = sorted(tripped)
    breakers += sorted(k for k, v in parked.items() if v == "b" and k not in tripped)
    concurrency = sorted(limits)
    with connection.pipeline(transaction=False) as pipe:
        for key in concurrency:
            pipe.zcount(key, now, "+inf")
            pipe.zcard(key + ":parked")
        for key in breakers:
            pipe.hmget(key, "state", "until", "opened")
            pipe.zcard(key + ":parked")
        replies = pipe.execute()
    found: list[FlowState] = []
    for i, key in enumerate(concurrency):
        in_use, waiting = replies[2 * i], replies[2 * i + 1]
        found.append(FlowState(_name(key), "concurrency", int(waiting), limits[key], int(in_use)))
    base = 2 * len(concurrency)
    for i, key in enumerate(breakers):
        (state, until, opened), waiting = replies[base + 2 * i], replies[base + 2 * i + 1]
        shown = {b"open": "open", b"half": "half-open"}.get(state or b"", "closed")
        probe_in = None
        if shown == "open" and until is not None:
            probe_in = max(float(until) - now, 0.0)
        found.append(
            FlowState(
                _name(key),
                "breaker",
                int(waiting),
                state=shown,
                opened=int(opened or 0),
                probe_in=probe_in,
            )
        )
    return found
