"""The consumer's link to Redis: the one part of the consumer that speaks Redis.

One call of the STEP script per batch stores the outcomes of the jobs just run (result or
failure, registries, TTLs, leases, removal from the processing list) and takes the next jobs
(moved into this consumer's processing list, marked started, their hashes read). A job leaves
the processing list only in the call that records its outcome, so a consumer that dies mid-job
leaves a safety copy that :func:`recover_orphans` puts back.

The hot path keeps one connection (the "link"): each job's outcome is written to it as soon as
the job ends, without waiting for the reply, and the replies are read with the next take. A
crash after a job ended therefore never reruns it, and there is still one blocking round trip
per batch.

Idle consumers block on the queues' doorbell lists (one token per pushed job); jobs pushed by
other tools (``rq requeue``) ring no bell and are found within the wait's timeout. Due scheduled
jobs (``delay``/``at``, retries with backoff, jobs waiting for their rate) are moved onto their
queues by every consumer, at least once a second and right when the earliest one is due.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import threading
import time
import zlib
from base64 import b64encode
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, final

import redis

from switchyard_rq._consumer.recovery import settle_consumer, unregister
from switchyard_rq._consumer.registration import LEASE_SECONDS, beat, register, renew
from switchyard_rq._consumer.source import (
    Job,
    Outcome,
    SourceUnavailable,
    Watched,
    WorkerCounts,
)
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import elsewhere
from switchyard_rq._wire.resp import pack, pack_args, roundtrip
from switchyard_rq._wire.scripts import (
    ACK_FIELDS,
    PROMOTE,
    RELEASE,
    STEP,
    TAKEN_FIELDS,
    WATCH,
    Ack,
    Take,
)

__all__ = ["LEASE_SECONDS", "RedisLink", "Relocated"]

log = logging.getLogger("switchyard_rq.consumer")

_PROMOTE_EVERY: Final = 1.0
_SHORTEST_BLOCK: Final = 0.01  # seconds: see RedisLink.wait
_PROMOTE_LIMIT: Final = 500
_ACK_SIZE: Final = len(ACK_FIELDS)
_TAKEN_SIZE: Final = len(TAKEN_FIELDS)
_NO_TAKE: Final = Take("", 0, "", 0, "", 0, 0, 0, 0, 0, 0.0, 0.0, "0")


def _now() -> tuple[str, float]:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment.timestamp()


_SECOND: list[Any] = [0, ""]  # the last whole second formatted: its number, RQ's text of it


def _ended() -> tuple[str, float]:
    """Now in RQ's format (to the microsecond) and unix seconds; the date and time of day are
    formatted once a second, for the many outcomes of that second."""
    now = time.time()
    second = int(now)
    if second != _SECOND[0]:
        _SECOND[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_SECOND[1]}.{int((now - second) * 1_000_000):06d}Z", now


def _int(raw: Any, default: int | None) -> int | None:
    if raw is None:
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


def _intervals(raw: Any) -> list[float] | None:
    if not raw:
        return None
    try:
        loaded = json.loads(raw)
    except ValueError:
        return None
    if isinstance(loaded, list) and all(isinstance(v, int | float) for v in loaded):
        return [float(v) for v in loaded]
    return None


def _lost_script(reply: Any) -> bool:
    return isinstance(reply, redis.exceptions.NoScriptError)


def _reply(link: Any) -> Any:
    """The next reply on ``link``; an error reply as the exception object, not raised."""
    try:
        return link.read_response()
    except redis.ResponseError as exc:
        return exc


async def _readable(link: Any) -> None:
    """Until ``link``'s socket has something to read (the loop runs other tasks meanwhile)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = link._sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class Relocated(SourceUnavailable):
    """A Redis Cluster answered that a queue's slot is served elsewhere, or is moving (MOVED,
    ASK, TRYAGAIN, CLUSTERDOWN): nothing of the call was applied; outcomes it carried are kept
    to be sent again. The caller learns the cluster's layout anew and points the link there."""


def moving(queues: Sequence[str], reply: BaseException) -> str:
    """Why a cluster sent a call on: "the slot of queue(s) X is moving: <Redis's reply>"."""
    name = type(reply).__name__.removesuffix("Error").upper()
    return f"the slot of queue(s) {', '.join(queues)} is elsewhere or moving ({name} {reply})"


class _Down:
    """Turns redis-py's connection errors into :class:`SourceUnavailable`."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is not None and isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            raise SourceUnavailable(str(exc)) from exc


_DOWN: Final = _Down()


def consumer_name(name: str | None) -> str:
    """``name``, checked, or a new one: ``<host>.<pid>.<random>``."""
    name = name or f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"
    if ":" in name or not name.strip():
        raise ValueError(f"bad consumer name {name!r}: no colons")
    return name


@final
class RedisLink:
    """A :class:`~switchyard_rq._consumer.source.JobSource` over Redis, in RQ's data layout."""

    def __init__(
        self,
        connection: redis.Redis,
        queues: Sequence[str],
        *,
        name: str | None = None,
        settings: TransportSettings | None = None,
        processing: str | None = None,
    ) -> None:
        names = tuple(queues)
        if not names:
            raise ValueError("a Consumer needs at least one queue name")
        for queue in names:
            if not queue or "," in queue or any(c.isspace() for c in queue):
                raise ValueError(f"bad queue name {queue!r}: no commas, spaces or empty names")
        self.connection = connection
        self.queues: tuple[str, ...] = names
        self.name = consumer_name(name)
        self.settings = settings or TransportSettings.from_env()
        self._events = "1" if self.settings.events else "0"
        # a call that only stores outcomes (no dequeue) still says whether to write events
        self._no_take = _NO_TAKE._replace(events=self._events)
        self.redis_errors = 0
        self.reconnects = 0
        self._processing = processing or keys.processing(self.name)
        step_keys = [
            self._processing,
            *(keys.queue(q) for q in names),
            *(keys.wake(q) for q in names),
        ]
        self._wake_keys = [keys.wake(q) for q in names]
        self._step_head: list[Any] = [b"EVALSHA", STEP.sha, len(step_keys), *step_keys]
        self._flush_head: list[Any] = [b"EVALSHA", STEP.sha, 1, self._processing]
        count = len(self._flush_head) + 1 + _ACK_SIZE + len(_NO_TAKE)
        self._outcome_head = b"*%d\r\n" % count + pack_args([*self._flush_head, 1])
        self._outcome_tail = pack_args(self._no_take)
        self._exec_prefix = secrets.token_hex(4)
        self._counter = 0
        self._taken = 0  # jobs taken: turns the priority wheel
        self._pending: list[Ack] = []  # outcomes not sent yet (later, or a lost connection)
        self._unread: list[list[Ack]] = []  # the outcomes of each call sent, reply not read yet
        self._link: Any = None
        self._idle = False  # counted in the queues' idle sets (see STEP)
        self._more = False
        self._idle_for = 2.0
        self._next_promote = 0.0
        self._next_due: float | None = None
        self._lock = threading.Lock()  # beat/renew (heartbeat thread) vs retire

    # -- taking jobs ---------------------------------------------------------------------------

    async def take(
        self, size: int, *, running: int, held: int, idle_for: float, patient: bool = False
    ) -> list[Job]:
        """Store pending outcomes, confirm sent ones, take up to ``size`` jobs (one round trip).
        ``held``: jobs the consumer holds now (running or waiting); ``idle_for``: how long it
        will wait if nothing comes (how long other consumers may count it idle); ``patient``:
        other tasks run on this loop, so wait for the reply without blocking it."""
        with _DOWN:
            if time.monotonic() >= self._next_promote:
                self._promote()
            stamp, ts = _now()
            self._counter += 1
            prefix = f"{self._exec_prefix}{self._counter}"
            take = Take(
                stamp, ts, self.name, len(self.queues), prefix, size, held, running,
                self._taken, 1 if self._idle else 0, ts + idle_for + 1.0, LEASE_SECONDS,
                self._events,
            )  # fmt: skip
            sent = len(self._pending)
            packed = pack(
                [*self._step_head, *self._outcome_args(self._pending), *take, *self.queues]
            )
            # a failed call keeps its outcomes pending (sent again: stored once, see STEP)
            reply = await self._exchange_async(packed) if patient else self._exchange(packed)
            del self._pending[:sent]
        due, deferred = reply[0], int(reply[1])
        if due:
            self.due_at(float(due))
        jobs = self._jobs(reply, prefix, stamp, ts)
        self._taken += len(jobs)
        # with nothing to take, the script counted us idle (other consumers then prefetch less)
        self._idle = not jobs and not deferred
        self._more = not jobs and deferred > 0
        return jobs

    def more(self) -> bool:
        return self._more

    def _jobs(self, reply: list[Any], prefix: str, stamp: str, ts: float) -> list[Job]:
        jobs = []
        queues = self.queues
        for n in range((len(reply) - 2) // _TAKEN_SIZE):
            start = 2 + n * _TAKEN_SIZE
            (raw_id, index, data, left, intervals, retries, result_ttl, failure_ttl, attempt,
             enqueued_at, trace, flow, _action,
             wf) = reply[start : start + _TAKEN_SIZE]  # fmt: skip
            jobs.append(
                Job(
                    id=raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id),
                    queue=queues[int(index) - 1],
                    data=data,
                    retries_left=_int(left, None),
                    retry_intervals=_intervals(intervals),
                    number_of_retries=_int(retries, 0) or 0,
                    result_ttl=_int(result_ttl, None),
                    failure_ttl=_int(failure_ttl, None),
                    attempt=int(attempt),
                    execution=f"{prefix}-{n + 1}",
                    started_at=stamp,
                    started_ts=ts,
                    enqueued_at=enqueued_at,
                    trace=trace,
                    flow=flow,
                    workflow=wf or None,
                )
            )
        return jobs

    def wait(self, timeout: float) -> None:
        """Idle: block on the doorbells (no longer than the next scheduled job is due). A wait
        shorter than 10 ms sleeps instead: Redis 6 reads a BLPOP timeout that rounds below 1 ms
        (0.001 s) as 0, "block forever", and its timeouts are only as fine as its 100 ms cron."""
        wait = timeout
        if self._next_due is not None:
            wait = min(wait, max(self._next_due - time.time(), 0.0))
        if wait >= _SHORTEST_BLOCK:
            with _DOWN:
                self.connection.blpop(self._wake_keys, timeout=round(wait, 3))
        elif wait > 0:
            time.sleep(wait)

    def _promote(self) -> None:
        stamp, ts = _now()
        moved, next_due = PROMOTE(self.connection, [], [ts, stamp, _PROMOTE_LIMIT, *self.queues])
        self._next_due = float(next_due) if next_due else None
        delay = _PROMOTE_EVERY
        if self._next_due is not None:
            delay = min(delay, max(self._next_due - ts, 0.0))
        if int(moved) >= _PROMOTE_LIMIT:
            delay = 0.0
        self._next_promote = time.monotonic() + delay

    @property
    def next_due(self) -> float | None:
        """When (unix seconds) the earliest scheduled job of its queues is due, if known."""
        return self._next_due

    def due_at(self, when: float) -> None:
        """A job of ours is scheduled for ``when`` (unix seconds): promote it on time."""
        if self._next_due is None or when < self._next_due:
            self._next_due = when
            self._next_promote = min(
                self._next_promote, time.monotonic() + max(when - time.time(), 0)
            )

    # -- outcomes ------------------------------------------------------------------------------

    def settle(self, outcome: Outcome, *, later: bool = False) -> None:
        """Write the outcome on the link now (its reply is read with the next take or flush);
        ``later``: keep it for the next take, push or flush (one call for many outcomes)."""
        ack = self._ack(outcome)
        if later:
            self._pending.append(ack)
            return
        # one outcome, no dequeue: the constant head and tail are packed once
        self._send(self._outcome_head + pack_args(ack) + self._outcome_tail, [ack])

    def push(self) -> None:
        """Send the outcomes kept for later now, in one call, without waiting for its reply."""
        if self._pending:
            acks, self._pending = self._pending, []
            self._send(pack([*self._flush_head, *self._outcome_args(acks), *self._no_take]), acks)

    def _send(self, packed: bytes, acks: list[Ack]) -> None:
        try:
            # A health check (PING) would read an unread reply as its answer: only when none is.
            self._link_get().send_packed_command([packed], check_health=not self._unread)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.debug("cannot send %d outcome(s) yet: %s", len(acks), exc)
            self._drop_link()
            self._pending.extend(acks)  # stored by the next take or flush
            return
        self._unread.append(acks)

    def _ack(self, outcome: Outcome) -> Ack:
        job = outcome.job
        ended, ended_ts = _ended()
        flow = job.flow or ""
        streams = self.settings.rq_result_streams
        action = outcome.action or ""
        progress = outcome.progress or ""
        wf = job.workflow or ""
        if outcome.mode == "ok":
            ttl = job.result_ttl if job.result_ttl is not None else self.settings.result_ttl
            result = outcome.result or "null"
            rq_text = b64encode(json.dumps(result).encode()) if streams else ""
            return Ack("ok", job.id, job.queue, job.execution, ended, ended_ts, ttl, result,
                       rq_text, "", "", job.started_ts, "", "", "", flow, 0, action,
                       progress, wf)  # fmt: skip
        error = outcome.error
        assert error is not None
        text = str(error)
        trip = 1 if outcome.trips else 0
        # a failure's TTL: a retry or failure of a job asked to stop is stored as canceled
        ttl = job.failure_ttl if job.failure_ttl is not None else self.settings.failure_ttl
        if outcome.mode != "retry":
            rq_text = b64encode(zlib.compress(text.encode())) if streams else ""
            return Ack(outcome.mode, job.id, job.queue, job.execution, ended, ended_ts, ttl, "",
                       rq_text, text, error.to_json(), job.started_ts, "", "", "", flow, trip,
                       action, progress, wf)  # fmt: skip
        due: float | str = ""
        if outcome.retry_due is not None:
            due = outcome.retry_due
            self.due_at(due)
        left = (job.retries_left or 1) - 1
        return Ack("retry", job.id, job.queue, job.execution, ended, ended_ts, ttl, "", "", text,
                   error.to_json(), job.started_ts, left, job.number_of_retries + 1, due, flow,
                   trip, action, progress, wf)  # fmt: skip

    def flush(self) -> None:
        """Store (and confirm) every outcome sent or pending, without dequeuing another job."""
        if self._pending or self._unread:
            with _DOWN:
                self._exchange(
                    pack([*self._flush_head, *self._outcome_args(self._pending), *self._no_take])
                )
            self._pending = []

    @staticmethod
    def _outcome_args(acks: list[Ack]) -> list[Any]:
        """The outcome part of STEP's arguments: the count, then each outcome's fields."""
        args: list[Any] = [len(acks)]
        for ack in acks:
            args.extend(ack)
        return args

    def _link_get(self) -> Any:
        if self._link is None:
            self._link = self.connection.connection_pool.get_connection()
        return self._link

    def _drop_link(self) -> None:
        """Close the link after an error; outcomes whose replies were not read are sent again."""
        link, self._link = self._link, None
        self._pending[:0] = [ack for acks in self._unread for ack in acks]
        self._unread = []
        if link is not None:
            link.disconnect()
            self.connection.connection_pool.release(link)

    def _exchange(self, packed: bytes) -> Any:
        """Send one STEP call on the link; read the replies of the outcomes sent before it, then
        its own. Outcomes whose fate a lost connection hides are sent again later."""
        link = self._link_get()
        unread = self._unread
        replies: list[Any] = []
        try:
            link.send_packed_command([packed], check_health=not unread)
            for _ in range(len(unread) + 1):
                replies.append(_reply(link))
        except BaseException:
            self._drop_link()  # the unread outcomes go back to pending
            raise
        return self._replied(packed, unread, replies)

    async def _exchange_async(self, packed: bytes) -> Any:
        """:meth:`_exchange`, waiting for each reply without blocking the event loop."""
        link = self._link_get()
        unread = self._unread
        replies: list[Any] = []
        try:
            link.send_packed_command([packed], check_health=not unread)
            for _ in range(len(unread) + 1):
                while not link.can_read(timeout=0):
                    await _readable(link)
                replies.append(_reply(link))
        except BaseException:
            self._drop_link()
            raise
        return self._replied(packed, unread, replies)

    def _replied(self, packed: bytes, unread: list[list[Ack]], replies: list[Any]) -> Any:
        """The reply to ``packed``, after checking the replies to the outcomes sent before."""
        self._unread = []
        again = [
            a for acks, r in zip(unread, replies, strict=False) if _lost_script(r) for a in acks
        ]
        for acks, reply in zip(unread, replies, strict=False):
            if isinstance(reply, Exception) and not _lost_script(reply) and not elsewhere(reply):
                ids = ", ".join(a.id for a in acks)
                log.error("storing the outcome of job(s) %s failed: %s", ids, reply)
        moved = [a for acks, r in zip(unread, replies, strict=False) if elsewhere(r) for a in acks]
        if moved or elsewhere(replies[-1]):  # nothing of those calls ran: send them again there
            self._pending[:0] = moved
            raise Relocated(moving(self.queues, next(r for r in replies if elsewhere(r))))
        reply = replies[-1]
        if again or _lost_script(reply):  # a restarted server lost the script: nothing applied
            STEP.load(self.connection)
            if again:
                self._call([*self._flush_head, *self._outcome_args(again), *self._no_take])
            if _lost_script(reply):
                reply = roundtrip(self.connection, [packed])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _call(self, args: list[Any]) -> Any:
        """One STEP call on the pool; loads the script again if the server lost it."""
        reply = roundtrip(self.connection, [pack(args)])[0]
        if _lost_script(reply):
            STEP.load(self.connection)
            reply = roundtrip(self.connection, [pack(args)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def give_back(self, keep: Sequence[str] = ()) -> int:
        """Give the jobs in the processing list but ``keep`` (still running) back to their
        queues, in order. Only with every outcome stored: the list then holds nothing that ran
        (but ``keep``)."""
        with _DOWN:
            return int(RELEASE(self.connection, [self._processing], list(keep)))

    def abandon(self) -> list[str]:
        """Settle the jobs still in the processing list as a dead consumer's (see RECOVER):
        running ones go back, or fail when not idempotent; prefetched ones go back as they
        were. Unregisters the consumer."""
        with _DOWN:
            return self._recover()

    def resume(self, keep: Sequence[str] = ()) -> int:
        """After a lost connection: store pending outcomes, give back jobs the consumer does not
        hold (``keep`` are the ones it does: running), and announce the consumer again (a
        restarted Redis may have lost the registration). Returns how many it gave back."""
        self.flush()
        self.reconnects += 1
        given = self.give_back(keep)
        with _DOWN:
            self._announce()
        return given

    # -- presence ------------------------------------------------------------------------------

    def announce(self) -> int:
        """Settle what an earlier consumer of this name left (a process that died, then started
        again under the same name) as :func:`recover_orphans` would, then register as an RQ
        worker. Returns how many jobs were settled."""
        with _DOWN:
            taken = self._recover() if self.connection.exists(self._processing) else []
            self._announce()
        return len(taken)

    def _recover(self) -> list[str]:
        return settle_consumer(self.connection, self.name, self.settings, self.queues)

    def _announce(self) -> None:
        STEP.load(self.connection)
        PROMOTE.load(self.connection)
        register(self.connection, self.name, self.queues, self.settings.heartbeat_ttl)

    def beat(self, counts: WorkerCounts) -> None:
        """Refresh ``switchyard:consumer:<name>:alive`` and the RQ worker hash's TTL."""
        with _DOWN, self._lock:
            beat(self.connection, self.name, self.settings.heartbeat_ttl, counts)

    def renew(self, jobs: Sequence[Job]) -> None:
        """Extend the concurrency leases these running jobs hold."""
        with _DOWN, self._lock:
            renew(self.connection, jobs)

    def watch(self, jobs: Sequence[Watched]) -> list[str]:
        """Store the progress of these running jobs; the ids of those asked to stop (one WATCH
        call per queue: each stays in its queue's slot)."""
        by_queue: dict[str, list[Any]] = {}
        for watched in jobs:
            by_queue.setdefault(watched.job.queue, []).extend(
                (watched.job.id, watched.action, watched.progress or "")
            )
        stop: list[str] = []
        now = time.time()
        with _DOWN, self._lock:
            for queue, triples in by_queue.items():
                found = WATCH(self.connection, [], [now, self._events, queue, *triples])
                stop.extend(i.decode() if isinstance(i, bytes) else str(i) for i in found)
        return stop

    def repoint(self, connection: redis.Redis) -> None:
        """Speak to ``connection`` from now on (a cluster moved the queue's slot, or failed
        over): the link is dropped, and outcomes whose replies were not read are sent again."""
        self._drop_link()
        self.connection = connection

    def release(self) -> None:
        """Give the link's connection back to its pool."""
        if self._link is not None:
            self.connection.connection_pool.release(self._link)
            self._link = None

    def retire(self) -> None:
        """Unregister: RQ's worker sets and hash, the heartbeat, the idle sets."""
        self.release()
        with _DOWN, self._lock:
            unregister(self.connection, self.name, self.queues)
