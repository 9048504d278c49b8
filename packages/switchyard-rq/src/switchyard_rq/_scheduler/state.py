"""A schedule's state in Redis, for people and tools: read it, pause, resume, trigger now."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

import redis

from switchyard_rq._producer.handle import JobHandle
from switchyard_rq._producer.schedule import schedule_action
from switchyard_rq._wire import keys
from switchyard_rq._wire.connection import get_connection, redis_errors

if TYPE_CHECKING:
    from switchyard import Registry, Schedule

__all__ = ["ScheduleState", "pause_schedule", "schedule_states", "trigger_schedule"]


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _number(raw: Any) -> float | None:
    return float(_text(raw)) if raw is not None else None


@final
@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What Redis knows of a schedule: every tick up to ``last`` (unix seconds) was handled; its
    last firing was ``job`` for ``tick`` at ``fired_at``; ``pending`` is a tick that overlap
    'queue' holds until that job ends; counts of ticks ``fired``, ``skipped`` (paused, or
    overlap 'skip') and ``missed`` (dropped by the catch-up policy)."""

    name: str
    last: float | None = None
    job: str | None = None
    tick: float | None = None
    fired_at: float | None = None
    pending: float | None = None
    paused: bool = False
    fired: int = 0
    skipped: int = 0
    missed: int = 0

    @classmethod
    def from_hash(cls, name: str, raw: dict[Any, Any]) -> ScheduleState:
        fields = {_text(k): v for k, v in raw.items()}
        return cls(
            name,
            last=_number(fields.get("last")),
            job=_text(fields["job"]) if "job" in fields else None,
            tick=_number(fields.get("tick")),
            fired_at=_number(fields.get("fired_at")),
            pending=_number(fields.get("pending")),
            paused="paused" in fields,
            fired=int(_text(fields.get("fired", b"0"))),
            skipped=int(_text(fields.get("skipped", b"0"))),
            missed=int(_text(fields.get("missed", b"0"))),
        )


def schedule_states(
    names: Iterable[str], *, connection: redis.Redis | None = None
) -> dict[str, ScheduleState]:
    """The state of each schedule named (one round trip)."""
    client = connection if connection is not None else get_connection()
    names = list(names)
    with redis_errors(client):
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.schedule(name))
        replies = pipe.execute()
    return {
        name: ScheduleState.from_hash(name, raw) for name, raw in zip(names, replies, strict=True)
    }


def pause_schedule(
    name: str, paused: bool = True, *, connection: redis.Redis | None = None
) -> bool:
    """Pause (or resume, with ``paused=False``) schedule ``name``: while paused its ticks are
    recorded as skipped, not fired. Returns whether that changed anything."""
    client = connection if connection is not None else get_connection()
    with redis_errors(client):
        if paused:
            return bool(client.hsetnx(keys.schedule(name), "paused", "1"))
        return bool(client.hdel(keys.schedule(name), "paused"))


def trigger_schedule(
    schedule: Schedule, *, registry: Registry | None = None, connection: redis.Redis | None = None
) -> JobHandle:
    """Fire ``schedule`` now, whatever its times, pause or overlap policy: a normal job of its
    action with its data (idempotency key ``schedule:<name>:trigger-<ms>``), recorded as the
    schedule's last firing, so that overlap applies to the next tick."""
    client = connection if connection is not None else get_connection()
    now = time.time()
    key = keys.schedule_tick_key(schedule.name, f"trigger-{int(now * 1000)}")
    handle = schedule_action(
        schedule.action, schedule.data, key=key, registry=registry, connection=client
    )
    with redis_errors(client):
        client.hset(
            keys.schedule(schedule.name), mapping={"job": handle.id, "fired_at": f"{now:.3f}"}
        )
    return handle
