"""The consumer: one worker process's job loop, many jobs at once when they wait on I/O.

The loop takes jobs from a :class:`JobSource` (Redis through :class:`RedisLink`, or memory in
tests), runs each in one of three lanes, and settles its outcome with the source:

- a sync handler runs inline, one at a time (CPU-bound work gains nothing from running beside
  another in one process);
- an async handler is a task on the consumer's event loop, beside up to ``concurrency - 1``
  others;
- a sync handler of an ``io_bound`` action runs in the consumer's thread pool.

The loop itself is a coroutine on that event loop: between jobs it lets running tasks progress,
and when every slot is busy or no job waits it sleeps until a job ends or a doorbell rings.
Prefetch is bounded by free slots; while the jobs that run are mostly inline ones, only what
runs within ~5 ms is taken at once (no job waits behind a slow one), and one at a time until a
job's run time is known.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

from switchyard import Registry, default_registry

from switchyard_rq._config import current_config
from switchyard_rq._consumer.execute import (
    Control,
    Resolver,
    Run,
    ThreadSlot,
    on_alarm,
    prepare,
    run_async,
    run_inline,
    run_threaded,
)
from switchyard_rq._consumer.link import RedisLink
from switchyard_rq._consumer.presence import Presence
from switchyard_rq._consumer.registration import LEASE_SECONDS
from switchyard_rq._consumer.source import (
    Job,
    JobSource,
    Outcome,
    SourceUnavailable,
    WorkerCounts,
)
from switchyard_rq._consumer.spread import ClusterSource
from switchyard_rq._observe import JOB_LOG, JobObserver, JobReport, log_job, wait_seconds
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire.cluster import is_cluster, plain_queue

if TYPE_CHECKING:
    import redis

__all__ = ["Consumer"]

log = logging.getLogger("switchyard_rq.consumer")

_MAX_BATCH: Final = 16  # inline jobs taken at once
_MAX_TAKE: Final = 128  # concurrent jobs taken at once
_BATCH_BUDGET: Final = 0.005  # prefetch only what runs within ~5 ms: no job waits behind a slow one
_MAX_BACKOFF: Final = 2.0
#: while a batch of jobs that run beside others starts, the loop lets the new ones begin (their
#: waits start) every few jobs: a slot freed first does not wait for the whole batch to start
_YIELD_EVERY: Final = 8
_REPORTED: Final = {"ok": "succeeded", "retry": "retried", "fail": "failed", "cancel": "cancelled"}


class Consumer:
    """One process's job loop over ``queues`` (in priority order), registered as an RQ worker.

    ``source`` is a Redis connection (the usual case) or any :class:`JobSource`, such as
    :class:`switchyard_rq.testing.MemorySource`. ``concurrency`` bounds the jobs running at once
    (async handlers, and sync handlers of ``io_bound`` actions; other sync handlers run one at a
    time). ``registry`` defaults to switchyard's default registry; ``name`` (default
    ``<host>.<pid>.<random>``) names its processing list and heartbeat key. ``observer`` gets a
    :class:`JobReport` per job (metrics); each outcome is also one line on ``switchyard.jobs``,
    unless ``log_jobs`` is False (for a caller whose observer writes the lines itself).
    ``redis_errors`` and ``reconnects`` count the Redis trouble ``run`` got over.
    """

    def __init__(
        self,
        source: redis.Redis | JobSource,
        queues: Sequence[str] = (),
        *,
        registry: Registry | None = None,
        name: str | None = None,
        observer: JobObserver | None = None,
        log_jobs: bool = True,
        concurrency: int = 1,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        self.settings = TransportSettings.from_env()
        if hasattr(source, "take"):
            self._source: JobSource = source  # type: ignore[assignment]
            self.connection: Any = getattr(source, "connection", None)
        elif is_cluster(source):
            self._source = ClusterSource(source, queues, name=name, settings=self.settings)
            self.connection = source
        else:
            link = RedisLink(source, queues, name=name, settings=self.settings)
            self._source = link
            self.connection = source
        self.name = self._source.name
        self.queues = self._source.queues
        self.concurrency = concurrency
        self.log_jobs = log_jobs
        self.observer = observer
        self.registry = registry if registry is not None else default_registry()
        self._resolver = Resolver(self.registry, current_config().max_payload_bytes)
        self.processed = 0
        self._errors = 0
        self._buffer: deque[Job] = deque()  # taken, not started (inline batches)
        self._running: dict[str, Job] = {}  # started in a task or thread, not settled
        self._controls: dict[str, Control] = {}  # every job started and not settled
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: deque[Outcome] = deque()  # ended in a task or thread, not settled yet
        self._abandoned = False
        self._spawned = False  # the last job started runs in a task or thread
        self._inline_seconds: float | None = None  # average run time of inline jobs
        self._concurrent_share = 0.0  # how many of the recent jobs ran in a task or thread
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._bell: asyncio.Future[None] | None = None
        self._bell_pool: ThreadPoolExecutor | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._old_alarm: Any = None
        self._main_ident = threading.main_thread().ident
        self._counts_lock = threading.Lock()
        self._counts = WorkerCounts()
        self._presence = Presence(
            self._source,
            heartbeat_ttl=self.settings.heartbeat_ttl,
            lease_seconds=LEASE_SECONDS,
            running=self._running_jobs,
            counts=self._take_counts,
            controls=self._running_controls,
        )

    @property
    def redis_errors(self) -> int:
        return self._errors + getattr(self._source, "redis_errors", 0)

    @property
    def reconnects(self) -> int:
        return int(getattr(self._source, "reconnects", 0))

    # -- lifecycle ---------------------------------------------------------------------------

    def register(self) -> None:
        """Announce this consumer (RQ worker hash and sets, heartbeat) and start its heartbeat
        thread. ``run``/``work_one`` call it on first use."""
        if self._presence.registered:
            return
        self._presence.start()
        if threading.current_thread() is threading.main_thread():
            self._old_alarm = signal.signal(signal.SIGALRM, on_alarm) or signal.SIG_DFL

    def close(self) -> None:
        """Store any outcome not yet stored, give back the jobs it holds but did not run (in
        order, to the front of their queues), stop the heartbeat, unregister from RQ's sets;
        close the process's resources.

        Call it from the thread that runs jobs. When Redis cannot be reached, what is left in
        the processing list stays there for :func:`recover_orphans` (or this name's next
        consumer).
        """
        if not self._presence.registered:
            return
        self._presence.stop()
        try:
            self._source.flush()
            self._source.give_back(list(self._running))
            self._buffer.clear()
            self._source.retire()
        finally:
            if self._old_alarm is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, self._old_alarm)
                self._old_alarm = None
            for pool in (self._bell_pool, self._threads):
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
            self._bell_pool = self._threads = None
            self._close_resources()

    def _close_resources(self) -> None:
        """The process's resources close with its consumer: async ones on their loop first."""
        from switchyard._resource import aclose_resources, close_resources

        if self._loop is not None:
            try:
                self._loop.run_until_complete(aclose_resources())
            finally:
                self._loop.close()
                self._loop = None
                self._wakeup = self._bell = None  # bound to the loop that closed
        close_resources()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------------------

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        max_jobs: int | None = None,
        idle_timeout: float = 1.0,
        grace: float | None = None,
    ) -> int:
        """Serve jobs until ``stop`` is set or ``max_jobs`` ran; return the number run.

        Redis errors are logged and retried with backoff (the consumer reconnects); a job's
        outcome is always stored before its safety copy goes. When stopping, jobs taken and not
        started go back to the head of their queues, and running ones get ``grace`` seconds
        (None: as long as they take) to end; after that async ones are cancelled and every job
        still running is given up as a dead worker's would be (run again, or failed when not
        idempotent).
        """
        self.register()
        loop = self.event_loop()
        self._abandoned = False
        try:
            return loop.run_until_complete(self._serve(stop, max_jobs, idle_timeout, grace))
        finally:
            self._settle()

    def work_one(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for one job, run it, store its outcome; True if one ran."""
        self.register()
        return self.event_loop().run_until_complete(self._one(timeout))

    async def _one(self, timeout: float) -> bool:
        job = await self._next(1, 1, timeout)
        if job is None:
            self._source.wait(timeout)
            job = await self._next(1, 1, timeout)
        if job is None:
            return False
        self._start(job)
        await self._drain(None)
        self._source.flush()
        return True

    async def _serve(
        self,
        stop: threading.Event | None,
        max_jobs: int | None,
        idle_timeout: float,
        grace: float | None,
    ) -> int:
        started = batch = 0
        backoff = 0.0
        source = self._source
        while (stop is None or not stop.is_set()) and (max_jobs is None or started < max_jobs):
            try:
                if backoff:
                    given = source.resume(list(self._running))
                    self._buffer.clear()
                    if given:
                        log.warning("gave back %d job(s) whose dequeue reply was lost", given)
                    backoff = 0.0
                # jobs that ended free their slots at once; their outcomes are settled after
                # the next jobs started (their run is the critical path, not the bookkeeping)
                free = self.concurrency - len(self._running) + len(self._done)
                if free <= 0:
                    self._collect()
                    await self._until_one_ends(idle_timeout)
                    continue
                left = None if max_jobs is None else max_jobs - started
                job = await self._next(free, left, idle_timeout)
                if job is None:
                    self._collect()
                    if source.more():
                        continue
                    if self._running:
                        await self._until_one_ends(idle_timeout, bell=True)
                    else:
                        source.wait(idle_timeout)
                    continue
                started += 1
                self._start(job)
                batch += 1
                if self._tasks and (
                    not self._buffer or not self._spawned or batch % _YIELD_EVERY == 0
                ):
                    # the running tasks' turn (the new ones start their waits): every few jobs of
                    # a batch that runs beside others, or between two inline jobs; then the
                    # ended ones' outcomes
                    await asyncio.sleep(0)
                    self._collect()
            except SourceUnavailable as exc:
                self._errors += 1
                backoff = min(max(backoff * 2, 0.05), _MAX_BACKOFF)
                log.warning("Redis unavailable (%s); retrying in %.2f s", exc, backoff)
                await self._pause(backoff, stop)
        self._give_back_taken()
        await self._drain(grace)
        return started

    async def _pause(self, seconds: float, stop: threading.Event | None) -> None:
        """Sleep (running tasks go on meanwhile), waking early when ``stop`` is set."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (stop is None or not stop.is_set()):
            await asyncio.sleep(min(0.05, deadline - time.monotonic()))

    async def _next(self, free: int, left: int | None, idle_timeout: float) -> Job | None:
        """The next job to start: from the batch in hand, else from the source. ``free``: slots
        free for jobs that run beside others; ``left``: jobs left to run (None: no end)."""
        if self._buffer:
            return self._buffer.popleft()
        concurrent = self._concurrent_share > 0.5
        if concurrent:  # they start at once, each in a free slot
            size = min(free, _MAX_TAKE)
        elif self._inline_seconds is None:
            size = 1  # the run time is not known yet: one at a time
        else:  # they run one after another: only what runs within the budget
            size = max(1, min(_MAX_BATCH, int(_BATCH_BUDGET / self._inline_seconds)))
        if left is not None:
            size = min(size, left)
        jobs = await self._source.take(
            size,
            running=size if concurrent else 1,
            held=len(self._running),  # ended ones too: their outcomes are not stored yet
            idle_for=idle_timeout,
            patient=bool(self._tasks),
        )
        if not jobs:
            return None
        self._buffer.extend(jobs[1:])
        return jobs[0]

    def _start(self, job: Job) -> None:
        self._spawned = False
        run = prepare(self._resolver, job)
        if isinstance(run, Outcome):
            self._finish(run)
            return
        hooks = self.registry.hooks
        self._controls[job.id] = run.control
        if run.action.is_async:
            self._spawn(job, run_async(run, hooks), run.control)
        elif run.action.policy.io_bound:
            self._spawn(job, self._threaded(run))
        else:
            self._concurrent_share *= 0.9
            outcome = run_inline(run, hooks, can_alarm=self.can_alarm)
            seconds = max(outcome.seconds, 1e-5)
            avg = self._inline_seconds
            self._inline_seconds = seconds if avg is None else 0.8 * avg + 0.2 * seconds
            self._finish(outcome)

    def _spawn(self, job: Job, work: Any, control: Control | None = None) -> None:
        self._spawned = True
        self._concurrent_share = 0.9 * self._concurrent_share + 0.1
        loop = self.event_loop()
        task = loop.create_task(work)
        if control is not None:  # asked to stop, the task is cancelled
            control.task, control.loop = task, loop
        self._running[job.id] = job
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self._abandoned:
            return
        error = task.exception()
        if error is not None:  # pragma: no cover - the runners turn errors into outcomes
            log.error("a job's task failed", exc_info=error)
            return
        self._done.append(task.result())
        if self._wakeup is not None:
            self._wakeup.set()

    async def _threaded(self, run: Run) -> Outcome:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                self.concurrency, thread_name_prefix=f"switchyard-{self.name}"
            )
        loop = asyncio.get_running_loop()
        slot = ThreadSlot()
        timeout = run.action.policy.timeout
        timer = loop.call_later(timeout, slot.interrupt) if timeout else None
        try:
            return await loop.run_in_executor(
                self._threads, run_threaded, run, self.registry.hooks, slot
            )
        finally:
            if timer is not None:
                timer.cancel()

    def _collect(self) -> None:
        """Settle the outcomes of the jobs that ended in a task or thread, all in one call sent
        without waiting for its reply (read with the next take)."""
        done = self._done
        if not done:
            return
        while done:
            outcome = done.popleft()
            self._running.pop(outcome.job.id, None)
            self._finish(outcome, later=True)
        self._source.push()

    def _finish(self, outcome: Outcome, *, later: bool = False) -> None:
        control = self._controls.pop(outcome.job.id, None)
        if control is not None:
            outcome.progress = control.last()
        self._source.settle(outcome, later=later)
        if self.observer is not None or (
            self.log_jobs and JOB_LOG.isEnabledFor(logging.INFO if outcome.ok else logging.WARNING)
        ):
            self._report(outcome)
        self.processed += 1
        with self._counts_lock:
            counts = self._counts
            if outcome.ok:
                counts.succeeded += 1
            else:
                counts.failed += 1
            counts.busy_seconds += outcome.seconds

    async def _until_one_ends(self, timeout: float, *, bell: bool = False) -> None:
        """Sleep until a running job ends (or, with ``bell``, a doorbell rings), at most
        ``timeout`` seconds; running tasks go on meanwhile."""
        if self._done:
            return
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        self._wakeup.clear()
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wakeup.wait())}
        if bell:
            if self._bell is None:
                if self._bell_pool is None:
                    self._bell_pool = ThreadPoolExecutor(1, thread_name_prefix="switchyard-bell")
                loop = asyncio.get_running_loop()
                self._bell = loop.run_in_executor(self._bell_pool, self._source.wait, timeout)
            waiters.add(self._bell)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                if waiter is not self._bell:
                    waiter.cancel()
        if self._bell is not None and self._bell.done():
            bell_rang, self._bell = self._bell, None
            error = bell_rang.exception()
            if error is not None:
                raise error

    def _give_back_taken(self) -> None:
        """Jobs taken and not started go back to their queues at once (not after the running
        ones end): another consumer may run them meanwhile."""
        if not self._buffer:
            return
        try:
            self._collect()
            self._source.flush()
            self._source.give_back(list(self._running))
            self._buffer.clear()
        except SourceUnavailable as exc:  # run()'s last step tries again
            log.warning("cannot give back the jobs taken and not started yet (%s)", exc)

    async def _drain(self, grace: float | None) -> None:
        """Wait for the running jobs (at most ``grace`` seconds); give up the rest."""
        deadline = None if grace is None else time.monotonic() + grace
        while True:
            self._collect()
            if not self._running:
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            await self._until_one_ends(0.5 if left is None else min(left, 0.5))
        self._abandoned = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)
        try:
            self._source.flush()
            abandoned = self._source.abandon()
        except SourceUnavailable as exc:
            log.warning("cannot give up the running jobs (%s): recovery will", exc)
            return
        log.warning(
            "%s: gave up %d job(s) still running after %s s: %s",
            self.name,
            len(abandoned),
            grace,
            ", ".join(abandoned[:5]) + (" ..." if len(abandoned) > 5 else ""),
        )
        self._running.clear()

    def _settle(self) -> None:
        """Store pending outcomes and give back taken jobs, retrying Redis errors a while."""
        backoff = 0.05
        for _ in range(20):
            try:
                self._source.flush()
                if self._buffer or not self._running:
                    self._source.give_back(list(self._running))
                    self._buffer.clear()
                return
            except SourceUnavailable as exc:
                log.warning("cannot store the last outcomes yet (%s)", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    def _report(self, outcome: Outcome) -> None:
        job = outcome.job
        mode = outcome.mode
        report = JobReport(
            outcome.action,
            job.id,
            plain_queue(job.queue),
            job.attempt,
            _REPORTED[mode],
            outcome.seconds,
            wait_seconds(job.enqueued_at, job.started_ts) if job.enqueued_at else None,
            outcome.error_type,
        )
        if self.observer is not None:
            try:
                self.observer.job_done(report)
            except Exception:  # metrics must never stop the jobs
                log.exception("the job observer failed")
        if self.log_jobs:
            log_job(report)

    def _running_jobs(self) -> list[Job]:
        """The jobs running in tasks and threads now (from the heartbeat thread)."""
        for _ in range(5):
            try:
                return list(self._running.values())
            except RuntimeError:  # changed size while copying: try again
                continue
        return []

    def _running_controls(self) -> list[Control]:
        """The controls of the jobs running now, inline ones too (from the heartbeat thread)."""
        for _ in range(5):
            try:
                return list(self._controls.values())
            except RuntimeError:  # changed size while copying: try again
                continue
        return []

    def _take_counts(self) -> WorkerCounts:
        with self._counts_lock:
            counts, self._counts = self._counts, WorkerCounts()
        return counts

    # -- the event loop ------------------------------------------------------------------------

    def event_loop(self) -> asyncio.AbstractEventLoop:
        """The consumer's one event loop (kept across jobs): async handlers run on it."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    @property
    def can_alarm(self) -> bool:
        """SIGALRM reaches only the main thread: timeouts of sync handlers need to run there."""
        return self._old_alarm is not None and threading.get_ident() == self._main_ident
