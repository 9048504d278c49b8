"""schedule_action / schedule_many: validate in the caller, then one pipeline to Redis."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, final

import redis
from pydantic import BaseModel
from switchyard import Config, Registry, cached_result, default_registry

from switchyard_rq._config import current_config
from switchyard_rq._errors import NotReplicatedError, PayloadTooLargeError
from switchyard_rq._producer.handle import CachedHandle, JobHandle
from switchyard_rq._settings import TransportSettings
from switchyard_rq._tracing import current_carrier
from switchyard_rq._wire import keys
from switchyard_rq._wire.admin import SCHEDULE_KEYED
from switchyard_rq._wire.cluster import is_cluster, routed_roundtrip, wire_queue
from switchyard_rq._wire.connection import (
    cluster_configured,
    get_connection,
    redis_errors,
    redis_url,
)
from switchyard_rq._wire.flow import directives
from switchyard_rq._wire.jobs import JobShape, job_shape, utcformat
from switchyard_rq._wire.keys import PRIORITY_CODE
from switchyard_rq._wire.resp import bulk, pack, pack_args, roundtrip

__all__ = ["Call", "route", "schedule_action", "schedule_many"]

_MAX_KEY: Final = 256
_MAX_TOKENS: Final = 256  # doorbell tokens per queue per batch: more idle consumers than that?
_ROUTES: dict[tuple[Any, ...], str] = {}


@final
@dataclass(frozen=True, slots=True)
class Call:
    """One call for :func:`schedule_many`: the action's name, its data, and when/how
    (``priority``, high/normal/low, overrides the action's own)."""

    name: str
    data: Any
    delay: float | timedelta | None = None
    at: datetime | None = None
    key: str | None = None
    priority: str | None = None


def route(name: str, hint: str | None = None, *, config: Config | None = None) -> str:
    """The queue of action ``name``: ``[tool.switchyard.routing]`` first, then the action's own
    queue hint, then the default queue (``Config.route``, cached per rule set)."""
    config = config or current_config()
    cache_key = (config.routing, config.default_queue, name, hint)
    queue = _ROUTES.get(cache_key)
    if queue is None:
        if len(_ROUTES) > 4096:
            _ROUTES.clear()
        queue = _ROUTES[cache_key] = config.route(name, hint)
    return queue


def _due(delay: float | timedelta | None, at: datetime | None, now: float) -> float | None:
    """The unix time a delayed job is due, or None to enqueue it now."""
    if delay is not None and at is not None:
        raise ValueError("give either delay or at, not both")
    if delay is not None:
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"delay must be a finite number of seconds >= 0, not {delay!r}")
        return now + seconds if seconds > 0 else None
    if at is not None:
        if not isinstance(at, datetime):
            raise TypeError(f"at must be a datetime, not {type(at).__name__}")
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware (e.g. datetime.now(UTC) + timedelta(...))")
        when = at.timestamp()
        return when if when > now else None
    return None


@dataclass(slots=True)
class _Prepared:
    job_id: str
    queue: str
    shape: JobShape
    payload: str
    due: float | None
    key: str | None
    key_ttl: int
    flow: str | None
    cached: tuple[str, BaseModel] | None = None  # (action, cached result): no job to write


def _prepare(
    call: Call,
    registry: Registry,
    config: Config,
    settings: TransportSettings,
    now: float,
    cluster: bool,
) -> _Prepared:
    """Everything that can fail, before anything reaches Redis. On a cluster the queue's name
    is its hash tag, and the job's id starts with it (see _wire/cluster.py)."""
    action = registry.resolve(call.name)
    model = action.validate_input(call.data)
    payload = model.model_dump_json()
    size = len(payload) if payload.isascii() else len(payload.encode())
    if size > config.max_payload_bytes:
        raise PayloadTooLargeError(action.name, size, config.max_payload_bytes)
    if call.key is not None and (
        not isinstance(call.key, str) or not call.key or len(call.key) > _MAX_KEY
    ):
        raise ValueError(f"key must be a non-empty string of at most {_MAX_KEY} characters")
    if call.priority is not None and call.priority not in PRIORITY_CODE:
        raise ValueError(f"priority must be 'high', 'normal' or 'low', not {call.priority!r}")
    due = _due(call.delay, call.at, now)
    policy = action.policy
    if policy.cache is not None and due is None and call.key is None:
        hit = cached_result(action, model)
        if hit is not None:
            return _Prepared(
                "",
                "",
                shape=None,  # type: ignore[arg-type]  # never read: no job is written
                payload=payload,
                due=None,
                key=None,
                key_ttl=0,
                flow=None,
                cached=(action.name, hit),
            )
    queue = wire_queue(route(action.name, policy.queue, config=config), cluster)
    shape = job_shape(
        action=action.name,
        queue=queue,
        scheduled=due is not None,
        policy=policy,
        settings=settings,
        priority=call.priority,
    )
    flow = None
    if policy.flow_controlled:
        flow = directives(action.name, policy, model, scope=queue if cluster else "")
    key_ttl = 0
    if call.key is not None:
        keep = max(settings.result_ttl, settings.failure_ttl)
        key_ttl = 10 * 365 * 86_400 if -1 in (settings.result_ttl, settings.failure_ttl) else keep
        if due is not None:
            key_ttl += math.ceil(due - now)
    job_id = f"{queue}{os.urandom(16).hex()}" if cluster else os.urandom(16).hex()
    return _Prepared(job_id, queue, shape, payload, due, call.key, key_ttl, flow)


def _as_call(item: Call | tuple[str, Any]) -> Call:
    if isinstance(item, Call):
        return item
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return Call(item[0], item[1])
    raise TypeError(f"schedule_many takes Call objects or (name, data) pairs, not {item!r}")


def schedule_many(
    calls: Iterable[Call | tuple[str, Any]],
    *,
    registry: Registry | None = None,
    connection: redis.Redis | None = None,
) -> list[JobHandle]:
    """Schedule many calls in one pipeline; all are validated first, so one bad call raises
    (naming its action) before any job reaches Redis. Returns the handles in order."""
    reg = registry if registry is not None else default_registry()
    config = current_config()
    settings = TransportSettings.from_env()
    now = time.time()
    cluster = is_cluster(connection) if connection is not None else cluster_configured(config)
    every = [_prepare(_as_call(i), reg, config, settings, now, cluster) for i in calls]
    prepared = [p for p in every if p.cached is None]
    ids: list[str] = []
    client = connection
    if prepared:
        client = connection if connection is not None else get_connection(redis_url(config))
        stamp = utcformat(datetime.fromtimestamp(now, UTC))
        with redis_errors(client):
            ids = _write(client, prepared, stamp, current_carrier(), settings)
    written = iter(ids)
    return [
        JobHandle(next(written), connection=client, registry=reg)
        if p.cached is None
        else CachedHandle(*p.cached, registry=reg)
        for p in every
    ]


def _write(
    client: redis.Redis,
    prepared: list[_Prepared],
    stamp: str,
    trace: str | None,
    settings: TransportSettings,
) -> list[str]:
    # each command with the key that routes it on a cluster (a queue's keys share its slot)
    cluster = is_cluster(client)
    queues = {p.queue for p in prepared}
    commands = [] if cluster else [(keys.QUEUES_SET, _register(queue)) for queue in queues]
    keyed: list[tuple[int, int]] = []  # (index in prepared, index of its reply)
    stamp_bulk = bulk(stamp)
    pushed: dict[tuple[str, str], list[str]] = {}
    scheduled: dict[str, list[float | str]] = {}
    for index, item in enumerate(prepared):
        if item.key is not None:
            keyed.append((index, len(commands)))
            keys_, args = _keyed_call(item, stamp, trace, settings.events)
            packed = pack((b"EVALSHA", SCHEDULE_KEYED.sha, len(keys_), *keys_, *args))
            commands.append((keys_[0], packed))
            continue
        job_key = keys.job(item.job_id)
        commands.append(
            (job_key, item.shape.hset(job_key, item.payload, stamp_bulk, trace, item.flow))
        )
        if item.due is not None:
            scheduled.setdefault(item.queue, []).extend((item.due, item.job_id))
        else:
            pushed.setdefault((item.queue, item.shape.priority), []).append(item.job_id)
        if settings.events:
            commands.append((job_key, _scheduled_event(item.queue, item.job_id, item.shape.action)))
    # After every hash: one push per queue (in order), one doorbell token per job (capped).
    for (queue, priority), ids in pushed.items():
        target = keys.queue_list(queue, priority)
        commands.append((target, pack((b"RPUSH", target, *ids))))
        commands.append((target, _ring(queue, min(len(ids), _MAX_TOKENS))))
    for queue, pairs in scheduled.items():
        commands.append((queue, pack((b"ZADD", keys.SCHEDULED + queue, *pairs))))
    # retried within the client's budget (a stale pooled connection, Redis restarting, a
    # failover): the batch may then reach Redis twice; an idempotency key makes a job once-only
    # durable: WAIT on each connection that wrote (it counts that connection's writes only)
    wait = settings.wait_replicas
    trailer = pack((b"WAIT", wait, int(settings.retry_seconds * 1000))) if wait else None
    trailed: list[Any] = []
    replies = _send(client, commands, cluster, settings, trailer, trailed)
    if cluster:
        _register_on_cluster(client, queues)
    for reply in replies:
        if isinstance(reply, Exception) and not isinstance(reply, redis.exceptions.NoScriptError):
            raise reply
    ids = [p.job_id for p in prepared]
    again: list[tuple[int, tuple[str, bytes]]] = []  # keyed calls a server without the script
    for index, position in keyed:
        answer = replies[position]
        if isinstance(answer, redis.exceptions.NoScriptError):  # (restarted, or promoted)
            keys_, args = _keyed_call(prepared[index], stamp, trace, settings.events)
            source = SCHEDULE_KEYED.source
            again.append((index, (keys_[0], pack((b"EVAL", source, len(keys_), *keys_, *args)))))
            continue
        ids[index] = answer.decode() if isinstance(answer, bytes) else str(answer)
    if again:  # sent with their source, then (durable) waited for like the rest
        replies = _send(client, [c for _, c in again], cluster, settings, trailer, trailed)
        for (index, _), answer in zip(again, replies, strict=True):
            if isinstance(answer, Exception):
                raise answer
            ids[index] = answer.decode() if isinstance(answer, bytes) else str(answer)
    if wait:
        confirmed = min((-1 if isinstance(r, Exception) else int(r) for r in trailed), default=-1)
        if confirmed < wait:
            said = "no" if confirmed < 0 else f"only {confirmed} of {wait}"
            raise NotReplicatedError(
                f"{len(prepared)} job(s) written to the Redis master, but {said} replica(s) "
                f"(SWITCHYARD_REDIS_WAIT_REPLICAS={wait}) confirmed them within "
                f"{settings.retry_seconds:g} s: a failover now could lose them"
            )
    return ids


def _send(
    client: redis.Redis,
    commands: list[tuple[str, bytes]],
    cluster: bool,
    settings: TransportSettings,
    trailer: bytes | None,
    trailed: list[Any],
) -> list[Any]:
    """Send packed ``commands`` (each with its routing key): on a cluster to their nodes, else
    in one write; ``trailer`` after them on each connection, its replies into ``trailed``."""
    if cluster:
        replies = routed_roundtrip(
            client, commands, budget=settings.retry_seconds, trailer=trailer, trailed=trailed
        )
        for reply in replies:
            if isinstance(reply, redis.ConnectionError):
                raise reply
        return replies
    packed = [c for _, c in commands]
    replies = roundtrip(client, packed + ([trailer] if trailer else []), retry=True)
    if trailer:
        trailed.append(replies.pop())
    return replies


_REGISTERED: set[tuple[int, str]] = set()


def _register_on_cluster(client: Any, queues: set[str]) -> None:
    """On a cluster, ``rq:queues`` lives on one node, which a producer must not depend on:
    each queue is tried once per process, and a node that does not answer is let be (the
    queue's consumers add it too)."""
    new = [q for q in queues if (id(client), q) not in _REGISTERED]
    if not new:
        return
    _REGISTERED.update((id(client), q) for q in new)
    with contextlib.suppress(redis.RedisError):
        client.sadd(keys.QUEUES_SET, *(keys.queue(q) for q in new))


@lru_cache(maxsize=256)
def _register(queue: str) -> bytes:
    """``SADD rq:queues rq:queue:<queue>``: RQ lists the queues it knows from that set."""
    return pack((b"SADD", keys.QUEUES_SET, keys.queue(queue)))


@lru_cache(maxsize=1024)
def _ring(queue: str, tokens: int) -> bytes:
    """Push ``tokens`` doorbell tokens for ``queue``: idle consumers block on its wake list."""
    return pack((b"RPUSH", keys.wake(queue), *[b"1"] * tokens))


def _scheduled_event(queue: str, job_id: str, action: str) -> bytes:
    """``XADD switchyard:events:<queue> MAXLEN ~ N * event scheduled job <id> action <name>``,
    its constant head packed once per queue (this runs for every job scheduled)."""
    return _event_head(queue) + bulk(job_id) + _action_tail(action)


@lru_cache(maxsize=256)
def _event_head(queue: str) -> bytes:
    return b"*12\r\n" + pack_args(
        (b"XADD", keys.events(queue), b"MAXLEN", b"~", keys.EVENTS_MAXLEN, b"*",
         b"event", b"scheduled", b"job")
    )  # fmt: skip


@lru_cache(maxsize=1024)
def _action_tail(action: str) -> bytes:
    return bulk("action") + bulk(action)


def _keyed_call(
    item: _Prepared, stamp: str, trace: str | None, events: bool
) -> tuple[list[str], list[Any]]:
    assert item.key is not None
    if item.due is not None:
        target = keys.SCHEDULED + item.queue
    else:
        target = keys.queue_list(item.queue, item.shape.priority)
    flat: list[Any] = []
    for field, value in item.shape.mapping(item.payload, stamp, trace, item.flow).items():
        flat.extend((field, value))
    return (
        [
            keys.idempotency(item.key, item.queue if item.job_id.startswith("{") else ""),
            keys.job(item.job_id),
            target,
            keys.wake(item.queue),
            *([keys.events(item.queue)] if events else []),
        ],
        [
            item.job_id,
            item.key_ttl,
            "schedule" if item.due is not None else "queue",
            item.due if item.due is not None else 0,
            item.shape.action,
            *flat,
        ],
    )


def schedule_action(
    name: str,
    data: Any,
    *,
    delay: float | timedelta | None = None,
    at: datetime | None = None,
    key: str | None = None,
    priority: str | None = None,
    registry: Registry | None = None,
    connection: redis.Redis | None = None,
) -> JobHandle:
    """Validate ``data`` for action ``name`` here, then enqueue a job on the action's queue.

    ``delay`` (seconds or timedelta) or ``at`` (an aware datetime) defers it; ``key`` is an
    idempotency key: while a job scheduled with that key is pending, running or finished, that
    job's handle is returned instead of a new job; ``priority`` (high, normal, low) overrides
    the action's own within its queue. An action with a ``cache`` policy whose result for this
    input is cached gets a finished :class:`CachedHandle` and no job. Bad input raises here
    (InvalidInputError, UnknownActionError, PayloadTooLargeError, ValueError) and nothing
    reaches Redis.
    """
    call = Call(name, data, delay=delay, at=at, key=key, priority=priority)
    return schedule_many([call], registry=registry, connection=connection)[0]
