"""The consumer: one worker process's job loop, lean and reliable, on RQ's data layout.

One call of the STEP script per batch stores the outcomes of the jobs just run (result or
failure, registries, TTLs, removal from the processing list) and takes the next jobs (moved into
this consumer's processing list, marked started, their hashes read). Batches are small and
adaptive: only what runs within ~5 ms, so trivial jobs share a round trip and none waits behind a
slow one, and never more than one job while another consumer of the queue sits idle. A job
leaves the processing list only in the call that records its outcome, so a consumer that dies
mid-job leaves a safety copy that :func:`recover_orphans` puts back; whatever is in that list
when the consumer holds nothing (a dequeue whose reply was lost) goes back to its queue before
the next dequeue.

Idle consumers block on the queues' doorbell lists (one token per pushed job); jobs pushed by other
tools (``rq requeue``) ring no bell and are found within ``idle_timeout``. Due scheduled jobs
(``delay``/``at``, retries with backoff) are moved onto their queues by every consumer, at least
once a second and right when the earliest one is due.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import redis
from switchyard import Action, Registry, default_registry

from switchyard_rq._config import current_config
from switchyard_rq._observe import JOB_LOG, JobObserver, JobReport, log_job, wait_seconds
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire import keys
from switchyard_rq._wire.resp import pack, pack_args, roundtrip
from switchyard_rq._wire.scripts import ACK_FIELDS, PROMOTE, RECOVER, RELEASE, STEP, Ack

from .execute import Job, Outcome, execute, on_alarm
from .recovery import NOT_IDEMPOTENT
from .recovery import died_text as _died_text

if TYPE_CHECKING:
    from redis.client import Pipeline

__all__ = ["Consumer"]

log = logging.getLogger("switchyard_rq.consumer")

_PROMOTE_EVERY: Final = 1.0
_MAX_BATCH: Final = 16
_BATCH_BUDGET: Final = 0.005  # prefetch only what runs within ~5 ms: no job waits behind a slow one
_PROMOTE_LIMIT: Final = 500
_MAX_BACKOFF: Final = 2.0
_ACK_SIZE: Final = len(ACK_FIELDS)


def _now() -> tuple[str, float]:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment.timestamp()


class Consumer:
    """One process's job loop over ``queues`` (in priority order), registered as an RQ worker.

    ``registry`` defaults to switchyard's default registry; ``name`` (default
    ``<host>.<pid>.<random>``) names its processing list and heartbeat key. ``observer`` gets a
    :class:`JobReport` per job (metrics); each outcome is also one line on ``switchyard.jobs``,
    unless ``log_jobs`` is False (for a caller whose observer writes the lines itself).
    ``redis_errors`` and ``reconnects`` count the Redis trouble ``run`` got over.
    """

    def __init__(
        self,
        connection: redis.Redis,
        queues: Sequence[str],
        *,
        registry: Registry | None = None,
        name: str | None = None,
        observer: JobObserver | None = None,
        log_jobs: bool = True,
    ) -> None:
        names = tuple(queues)
        if not names:
            raise ValueError("a Consumer needs at least one queue name")
        for queue in names:
            if not queue or "," in queue or any(c.isspace() for c in queue):
                raise ValueError(f"bad queue name {queue!r}: no commas, spaces or empty names")
        self.connection = connection
        self.log_jobs = log_jobs
        self.queues: tuple[str, ...] = names
        self.registry = registry if registry is not None else default_registry()
        self.name = name or f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"
        if ":" in self.name or not self.name.strip():
            raise ValueError(f"bad consumer name {self.name!r}: no colons")
        self.settings = TransportSettings.from_env()
        self.max_payload_bytes = current_config().max_payload_bytes
        self._processing = keys.processing(self.name)
        self._dequeue_keys = [
            self._processing,
            *(keys.queue(q) for q in names),
            *(keys.wake(q) for q in names),
        ]
        self._wake_keys = [keys.wake(q) for q in names]
        self._step_head: list[Any] = [
            b"EVALSHA",
            STEP.sha,
            len(self._dequeue_keys),
            *self._dequeue_keys,
        ]
        self._flush_head: list[Any] = [b"EVALSHA", STEP.sha, 1, self._processing]
        self._outcome_head = b"*%d\r\n" % (len(self._flush_head) + 1 + _ACK_SIZE + 6) + pack_args(
            [*self._flush_head, 1]
        )
        self._outcome_tail = pack_args(self._no_dequeue())
        self._exec_prefix = secrets.token_hex(4)
        self._counter = 0
        self._pending: list[Ack] = []  # outcomes not sent yet (a lost connection)
        self._unread: list[Ack] = []  # outcomes sent on the link, replies not read yet
        self._link: Any = None
        self._buffer: deque[Job] = deque()
        self._idle = False  # counted in the queues' idle sets (see STEP)
        self._idle_for = 2.0
        self._avg_seconds = 0.001
        self._registered = False
        self._next_promote = 0.0
        self._next_due: float | None = None
        self._hb_stop = threading.Event()
        self._hb_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._old_alarm: Any = None
        self._main_ident = threading.main_thread().ident
        self._stats_lock = threading.Lock()
        self._succeeded = 0
        self._failed = 0
        self._busy_seconds = 0.0
        self.processed = 0
        self.redis_errors = 0
        self.reconnects = 0
        self.observer = observer
        self._actions: dict[str, Action] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def register(self) -> None:
        """Announce this consumer (RQ worker hash and sets, heartbeat) and start its heartbeat
        thread. ``run``/``work_one`` call it on first use."""
        if self._registered:
            return
        self._take_over()
        self._announce()
        if threading.current_thread() is threading.main_thread():
            self._old_alarm = signal.signal(signal.SIGALRM, on_alarm) or signal.SIG_DFL
        self._registered = True
        self._hb_stop.clear()
        self._hb_thread = threading.Thread(
            target=self._heartbeat_loop, name=f"switchyard-heartbeat-{self.name}", daemon=True
        )
        self._hb_thread.start()

    def _take_over(self) -> None:
        """Settle what an earlier consumer of this name left in its processing list (a process
        that died, then started again under the same name): as :func:`recover_orphans` would."""
        if self.connection.exists(self._processing):
            taken = RECOVER(
                self.connection,
                [self._processing, keys.CONSUMERS_SET, keys.consumer_queues(self.name)],
                [self.name, *_now(), NOT_IDEMPOTENT, _died_text()],
            )
            if taken:
                log.warning(
                    "%s: settled %d job(s) an earlier consumer of this name left",
                    self.name,
                    len(taken),
                )

    def _announce(self) -> None:
        STEP.load(self.connection)
        PROMOTE.load(self.connection)
        stamp, _ = _now()
        worker = keys.WORKER_PREFIX + self.name
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.delete(worker)
            pipe.hset(
                worker,
                mapping={
                    "birth": stamp,
                    "last_heartbeat": stamp,
                    "queues": ",".join(self.queues),
                    "pid": os.getpid(),
                    "hostname": socket.gethostname(),
                    "ip_address": "",
                    "version": "switchyard-rq",
                    "python_version": "",
                    "state": "idle",
                },
            )
            pipe.sadd(keys.WORKERS_SET, worker)
            for queue in self.queues:
                pipe.sadd(keys.WORKERS_BY_QUEUE + queue, worker)
                pipe.sadd(keys.QUEUES_SET, keys.queue(queue))
            pipe.sadd(keys.consumer_queues(self.name), *self.queues)
            pipe.sadd(keys.CONSUMERS_SET, self.name)
            self._heartbeat_commands(pipe, stamp)
            pipe.execute()

    def heartbeat(self) -> None:
        """Refresh ``switchyard:consumer:<name>:alive`` and the RQ worker hash's TTL."""
        with self.connection.pipeline(transaction=False) as pipe:
            self._heartbeat_commands(pipe, _now()[0])
            pipe.execute()

    def _heartbeat_commands(self, pipe: Pipeline, stamp: str) -> None:
        ttl = self.settings.heartbeat_ttl
        worker = keys.WORKER_PREFIX + self.name
        with self._stats_lock:
            ok, failed, busy = self._succeeded, self._failed, self._busy_seconds
            self._succeeded = self._failed = 0
            self._busy_seconds = 0.0
        pipe.set(keys.alive(self.name), stamp, ex=ttl)
        state = "busy" if ok or failed else "idle"  # since the last heartbeat, for `rq info`
        pipe.hset(worker, mapping={"last_heartbeat": stamp, "state": state})
        if ok:
            pipe.hincrby(worker, "successful_job_count", ok)
        if failed:
            pipe.hincrby(worker, "failed_job_count", failed)
        if busy:
            pipe.hincrbyfloat(worker, "total_working_time", busy)
        pipe.expire(worker, ttl + 60)
        pipe.expire(keys.consumer_queues(self.name), ttl + 86_400)

    def _heartbeat_loop(self) -> None:
        interval = max(self.settings.heartbeat_ttl / 3, 0.5)
        while not self._hb_stop.wait(interval):
            try:
                self.heartbeat()
            except redis.RedisError as exc:  # the main loop reports and retries Redis trouble
                log.debug("heartbeat of %s failed: %s", self.name, exc)

    def close(self) -> None:
        """Store any outcome not yet stored, give back the jobs it holds but did not run (in
        order, to the front of their queues), stop the heartbeat, unregister from RQ's sets.

        Call it from the thread that runs jobs. When Redis cannot be reached, what is left in
        the processing list stays there for :func:`recover_orphans` (or this name's next
        consumer).
        """
        if not self._registered:
            return
        self._hb_stop.set()
        if self._hb_thread is not None:
            self._hb_thread.join(timeout=5)
        try:
            self._flush()
            self._release(everything=True)
            if self._link is not None:
                self.connection.connection_pool.release(self._link)
                self._link = None
            worker = keys.WORKER_PREFIX + self.name
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.srem(keys.WORKERS_SET, worker)
                for queue in self.queues:
                    pipe.srem(keys.WORKERS_BY_QUEUE + queue, worker)
                    pipe.zrem(keys.idle(queue), self.name)
                pipe.delete(worker, keys.alive(self.name), keys.consumer_queues(self.name))
                pipe.srem(keys.CONSUMERS_SET, self.name)
                pipe.execute()
        finally:
            self._registered = False
            if self._old_alarm is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, self._old_alarm)
                self._old_alarm = None
            # the process's resources close with its consumer: async ones on their loop first
            from switchyard._resource import aclose_resources, close_resources

            if self._loop is not None:
                try:
                    self._loop.run_until_complete(aclose_resources())
                finally:
                    self._loop.close()
                    self._loop = None
            close_resources()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop --------------------------------------------------------------------------

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        max_jobs: int | None = None,
        idle_timeout: float = 1.0,
    ) -> int:
        """Serve jobs until ``stop`` is set or ``max_jobs`` ran; return the number run.

        Redis errors are logged and retried with backoff (the consumer reconnects); a job's
        outcome is always stored before its safety copy goes. Prefetched jobs that will not run
        (``stop`` was set) go back to the head of their queues.
        """
        self.register()
        done = 0
        backoff = 0.0
        try:
            while (stop is None or not stop.is_set()) and (max_jobs is None or done < max_jobs):
                try:
                    if backoff:
                        self._resume()
                        backoff = 0.0
                    limit = _MAX_BATCH if max_jobs is None else max_jobs - done
                    if self._step(idle_timeout, flush=False, limit=limit):
                        done += 1
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    self.redis_errors += 1
                    backoff = min(max(backoff * 2, 0.05), _MAX_BACKOFF)
                    log.warning("Redis unavailable (%s); retrying in %.2f s", exc, backoff)
                    if stop is not None:
                        stop.wait(backoff)
                    else:
                        time.sleep(backoff)
        finally:
            self._settle()
        return done

    def _settle(self) -> None:
        """Store pending outcomes and give back prefetched jobs, retrying Redis errors a while."""
        backoff = 0.05
        for _ in range(20):
            try:
                self._flush()
                self._release(everything=True)
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("cannot store the last outcomes yet (%s)", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    def _resume(self) -> None:
        """After a lost connection: store pending outcomes, give back prefetched jobs and any
        job whose dequeue reply was lost (it sits in our processing list), and announce
        ourselves again (a restarted Redis may have lost the registration)."""
        self._flush()
        self.reconnects += 1
        # every job still in our list never ran here: back to its queue, even if not idempotent
        reclaimed = self._release(everything=True)
        if reclaimed:
            log.warning("gave back %d job(s) whose dequeue reply was lost", reclaimed)
        self._announce()

    def work_one(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for one job, run it, store its outcome; True if one ran."""
        self.register()
        return self._step(timeout, flush=True, limit=1)

    def _step(self, timeout: float, *, flush: bool, limit: int) -> bool:
        if not self._buffer:
            size = max(1, min(limit, _MAX_BATCH, int(_BATCH_BUDGET / self._avg_seconds)))
            self._idle_for = timeout + 1.0
            self._fetch(size)
            if not self._buffer:
                self._wait_for_job(timeout, size)
                if not self._buffer:
                    return False
        job = self._buffer.popleft()
        begun = time.time() if job.enqueued_at else 0.0
        outcome = execute(self, job)
        self._send_outcome(outcome.ack)
        if self.observer is not None or (
            self.log_jobs and JOB_LOG.isEnabledFor(logging.INFO if outcome.ok else logging.WARNING)
        ):
            self._report(job, outcome, begun)
        self._avg_seconds = max(0.8 * self._avg_seconds + 0.2 * outcome.seconds, 1e-5)
        self.processed += 1
        with self._stats_lock:
            if outcome.ok:
                self._succeeded += 1
            else:
                self._failed += 1
            self._busy_seconds += outcome.seconds
        if flush:
            self._flush()
        return True

    def _report(self, job: Job, outcome: Outcome, begun: float) -> None:
        mode = outcome.ack[0]
        report = JobReport(
            outcome.action,
            job.id,
            job.queue,
            job.attempt,
            "succeeded" if mode == "ok" else ("retried" if mode == "retry" else "failed"),
            outcome.seconds,
            wait_seconds(job.enqueued_at, begun) if begun else None,
            outcome.error_type,
        )
        if self.observer is not None:
            try:
                self.observer.job_done(report)
            except Exception:  # metrics must never stop the jobs
                log.exception("the job observer failed")
        if self.log_jobs:
            log_job(report)

    # The hot path keeps one connection (the "link"): each job's outcome is written to it as soon
    # as the job ends, without waiting for the reply, and the replies are read with the next
    # fetch. A crash after a job ended therefore never reruns it, and there is still one
    # blocking round trip per batch.

    def _link_get(self) -> Any:
        if self._link is None:
            self._link = self.connection.connection_pool.get_connection()
        return self._link

    def _drop_link(self) -> None:
        """Close the link after an error; outcomes whose replies were not read are sent again."""
        link, self._link = self._link, None
        self._pending[:0] = self._unread
        self._unread = []
        if link is not None:
            link.disconnect()
            self.connection.connection_pool.release(link)

    def _send_outcome(self, ack: Ack) -> None:
        # one outcome, no dequeue: the constant head and tail are packed once
        packed = self._outcome_head + pack_args(ack) + self._outcome_tail
        try:
            # A health check (PING) would read an unread reply as its answer: only when none is.
            self._link_get().send_packed_command([packed], check_health=not self._unread)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.debug("cannot send the outcome of job %s yet: %s", ack[1], exc)
            self._drop_link()
            self._pending.append(ack)  # stored by the next fetch or flush
            return
        self._unread.append(ack)

    def _exchange(self, packed: bytes) -> Any:
        """Send one STEP call on the link; read the replies of the outcomes sent before it, then
        its own. Outcomes whose fate a lost connection hides are sent again later."""
        link = self._link_get()
        unread = self._unread
        replies: list[Any] = []
        try:
            link.send_packed_command([packed], check_health=not unread)
            for _ in range(len(unread) + 1):
                try:
                    replies.append(link.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            self._drop_link()  # the unread outcomes go back to pending
            raise
        self._unread = []
        again = [a for a, r in zip(unread, replies, strict=False) if _lost_script(r)]
        for ack, reply in zip(unread, replies, strict=False):
            if isinstance(reply, Exception) and not _lost_script(reply):
                log.error("storing the outcome of job %s failed: %s", ack[1], reply)
        reply = replies[-1]
        if again or _lost_script(reply):  # a restarted server lost the script: nothing applied
            STEP.load(self.connection)
            if again:
                self._call([*self._flush_head, *_outcomes(again), *self._no_dequeue()])
            if _lost_script(reply):
                reply = roundtrip(self.connection, [packed])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _no_dequeue(self) -> list[Any]:
        return ["", 0, self.name, 0, "", 0]

    def _flush(self) -> None:
        """Store (and confirm) every outcome sent or pending, without dequeuing another job."""
        if self._pending or self._unread:
            self._exchange(
                pack([*self._flush_head, *_outcomes(self._pending), *self._no_dequeue()])
            )
            self._pending = []

    def _release(self, *, everything: bool = False) -> int:
        """Give prefetched jobs that will not run here back to their queues, in order (with
        ``everything``, also jobs whose dequeue reply was lost); return how many of the latter.
        Only with every outcome stored: the processing list then holds nothing that ran."""
        if not (self._buffer or everything):
            return 0
        given = int(RELEASE(self.connection, [self._processing], []))
        lost = max(given - len(self._buffer), 0)
        self._buffer.clear()
        return lost

    def _call(self, args: list[Any]) -> Any:
        """One STEP call on the pool; loads the script again if the server lost it."""
        reply = roundtrip(self.connection, [pack(args)])[0]
        if _lost_script(reply):
            STEP.load(self.connection)
            reply = roundtrip(self.connection, [pack(args)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _fetch(self, size: int) -> None:
        """One round trip: store pending outcomes, confirm sent ones, take up to ``size`` jobs."""
        if time.monotonic() >= self._next_promote:
            self._promote()
        stamp, ts = _now()
        self._counter += 1
        prefix = f"{self._exec_prefix}{self._counter}"
        reply = self._exchange(
            pack(
                [
                    *self._step_head,
                    *_outcomes(self._pending),
                    stamp, ts, self.name, len(self.queues), prefix, size, *self.queues,
                    b"1" if self._idle else b"0", ts + self._idle_for,
                ]
            )
        )  # fmt: skip
        self._pending = []
        # with nothing to take, the script counted us idle (other consumers then prefetch less)
        self._idle = not reply
        if reply:
            self._buffer.extend(Job.batch(reply, self.queues, prefix, stamp, ts))

    def _wait_for_job(self, timeout: float, size: int) -> None:
        """Idle: block on the doorbells (no longer than the next scheduled job is due)."""
        wait = timeout
        if self._next_due is not None:
            wait = min(wait, max(self._next_due - time.time(), 0.0))
        if wait > 0:
            self.connection.blpop(self._wake_keys, timeout=max(wait, 0.001))
        self._fetch(size)

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

    # -- used by _outcome ------------------------------------------------------------------

    def event_loop(self) -> asyncio.AbstractEventLoop:
        """The consumer's one event loop for async handlers (kept across jobs)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    @property
    def can_alarm(self) -> bool:
        """SIGALRM reaches only the main thread: timeouts of sync handlers need to run there."""
        return self._old_alarm is not None and threading.get_ident() == self._main_ident

    def resolve(self, name: str) -> Action:
        """The registered action ``name`` (cached): the only code a job can make this run."""
        found = self._actions.get(name)
        if found is None:
            found = self._actions[name] = self.registry.resolve(name)
        return found

    def due_at(self, when: float) -> None:
        """A job of ours is scheduled for ``when`` (unix seconds): promote it on time."""
        if self._next_due is None or when < self._next_due:
            self._next_due = when
            self._next_promote = min(
                self._next_promote, time.monotonic() + max(when - time.time(), 0)
            )


def _lost_script(reply: Any) -> bool:
    return isinstance(reply, redis.exceptions.NoScriptError)


def _outcomes(acks: list[Ack]) -> list[Any]:
    """The outcome part of STEP's arguments: the count, then each outcome's fields."""
    args: list[Any] = [len(acks)]
    for ack in acks:
        args.extend(ack)
    return args
