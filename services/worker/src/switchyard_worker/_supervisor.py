"""The supervisor: keeps the pool at its target size, replaces dead children, stops gracefully.

One loop in the main thread waits on the children's sentinels (a child's death wakes it at
once), a self-pipe written by the signal handlers, and the autoscaler's tick. Everything that
talks to Redis goes through ``switchyard_rq``'s public API.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, Final, final

import switchyard_rq

from ._autoscale import Observation, ScaleState, decide
from ._boot import Boot
from ._child import EXIT_BOOT_FAILED, ChildSpec, child_main
from ._forkserver import start_forkserver
from ._metrics import MetricsDir, PoolExposition
from ._schedules import SchedulerThread
from ._settings import WorkerSettings

__all__ = ["Supervisor"]

log = logging.getLogger("switchyard_worker")

_IDLE_TIMEOUT: Final = 0.5  # how often an idle consumer checks its stop event
_QUICK_DEATH: Final = 2.0  # a child dead sooner than this after start delays its replacement
_MAX_HOLD: Final = 10.0


@dataclass(slots=True)
class _Child:
    name: str
    process: BaseProcess
    started: float
    ready: Any  # a multiprocessing Event: set once the child's consumer is registered
    retiring: bool = False


@final
@dataclass(slots=True)
class _Counters:
    started: int = 0
    recycled: int = 0
    died: int = 0
    recovered_jobs: int = 0
    redis_errors: int = 0
    scaled_up: int = 0
    scaled_down: int = 0


@final
class Supervisor:
    """Run the pool described by ``settings`` for the queues ``queues`` until signalled."""

    def __init__(
        self, settings: WorkerSettings, boot: Boot, *, queues: tuple[str, ...], redis_url: str
    ) -> None:
        self.settings = settings
        self.boot = boot
        self.queues = queues
        self.redis_url = redis_url
        self.counters = _Counters()
        self._ctx = start_forkserver()
        self._policy = settings.policy()
        self._state = ScaleState()
        self._target = settings.min_processes
        self._children: list[_Child] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._prefix = f"{socket.gethostname()}.{os.getpid()}"
        self._hold_until = 0.0
        self._hold = 0.5
        self._signals = 0
        self._stopping = False
        #: None until Redis was first tried, then whether the last call worked
        self._redis_ok: bool | None = None
        self._depth = 0
        self._age = 0.0
        self._connection: Any = None
        #: the last queue_stats of the served queues (for /metrics)
        self.queue_stats: dict[str, switchyard_rq.QueueStats] = {}
        #: flow control's limits and breakers at the last tick (for /metrics)
        self.flow: list[switchyard_rq.FlowState] = []
        self._metrics_dir: MetricsDir | None = None
        self._exposition: PoolExposition | None = None
        if settings.metrics and settings.health_port:
            self._metrics_dir = MetricsDir()
        # the pool's lifeline: each child holds the read end, only we the write end, open for
        # as long as we live (never inherited: pipes are not), so a child reads EOF once we are
        # gone, however we went
        self._lifeline, self._lifeline_w = self._ctx.Pipe(duplex=False)
        self._scheduler: SchedulerThread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # ------------------------------------------------------------------ public

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; return the process exit code."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self._connection = switchyard_rq.get_connection(self.redis_url)
            self._fill()
            if self.settings.schedules:
                self._scheduler = SchedulerThread(
                    self.settings,
                    self.boot,
                    connection=self._connection,
                    serving=self._serving,
                )
                self._scheduler.start()
            return self._loop()
        except BaseException:
            if self._children:  # never leave a pool behind, whatever stopped us
                log.error("supervisor failed; stopping the pool")
                self._shutdown()
            raise
        finally:
            if self._scheduler is not None:
                self._scheduler.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)
            if self._metrics_dir is not None:
                self._metrics_dir.remove()

    def exposition(self) -> tuple[bytes, str] | None:
        """The ``/metrics`` body with every pool process's job metrics (None: metrics off)."""
        if self._metrics_dir is None:
            return None
        if self._exposition is None:
            self._exposition = PoolExposition(self, self._metrics_dir)
        return self._exposition.render()

    def readiness(self) -> Mapping[str, tuple[bool, str]]:
        """The ``/readyz`` checks: registry, Redis, children."""
        # the main loop drops a dead child as soon as its sentinel fires; no waitpid from here
        with self._lock:
            alive = [c for c in self._children if not c.retiring]
        serving = sum(1 for c in alive if c.ready.is_set())
        # one PING of its own, not the pool's retries: a probe gets its answer in time
        check = switchyard_rq.check_redis(self.redis_url, timeout=0.5)
        redis = (check.problem is None, "reachable" if check.problem is None else str(check))
        wanted = self.settings.min_processes
        return {
            "registry": (True, f"{len(self.boot.registry)} actions from {self.boot.source}"),
            "redis": redis,
            "children": (
                serving >= wanted and not self._stopping,
                "stopping"
                if self._stopping
                else f"{serving} serving, {len(alive)} alive, at least {wanted} wanted",
            ),
        }

    def metrics(self) -> Mapping[str, tuple[str, str, float]]:
        """Gauges and counters for ``/metrics`` (Prometheus text format)."""
        with self._lock:
            active = [c for c in self._children if not c.retiring]
        serving = sum(1 for c in active if c.ready.is_set())
        n = self.counters
        p = "switchyard_worker_"
        return {
            p + "processes": ("gauge", "pool processes running (not retiring)", len(active)),
            p + "processes_serving": ("gauge", "pool processes consuming", serving),
            p + "processes_target": ("gauge", "pool size the autoscaler wants", self._target),
            p + "processes_min": (
                "gauge",
                "smallest pool size (--min)",
                self.settings.min_processes,
            ),
            p + "processes_max": (
                "gauge",
                "largest pool size (--max)",
                self.settings.max_processes,
            ),
            p + "queue_depth": ("gauge", "jobs waiting in the served queues", self._depth),
            p + "oldest_job_age_seconds": ("gauge", "age of the oldest waiting job", self._age),
            p + "redis_up": ("gauge", "1 if the last Redis call worked", int(bool(self._redis_ok))),
            p + "processes_started_total": ("counter", "pool processes started", n.started),
            p + "processes_recycled_total": ("counter", "processes recycled", n.recycled),
            p + "processes_died_total": ("counter", "processes that died", n.died),
            p + "jobs_recovered_total": (
                "counter",
                "jobs of dead workers put back",
                n.recovered_jobs,
            ),
            p + "redis_errors_total": ("counter", "failed Redis calls", n.redis_errors),
        }

    def _serving(self) -> bool:
        """Whether a pool process consumes already (the scheduler looks after that)."""
        with self._lock:
            return any(c.ready.is_set() for c in self._children)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> int:
        interval = self.settings.scale_interval
        next_tick = time.monotonic() + interval
        next_sweep = time.monotonic() + self.settings.recover_interval
        while True:
            now = time.monotonic()
            with self._lock:
                sentinels: list[Any] = [c.process.sentinel for c in self._children]
            mp_connection.wait([*sentinels, self._wake_r], timeout=max(0.0, next_tick - now))
            if self._drain_wakeups():
                return self._shutdown()
            self._reap()
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + interval
                self._tick()
            if now >= next_sweep:
                next_sweep = now + self.settings.recover_interval
                self._recover(None)
            self._fill()

    def _tick(self) -> None:
        try:
            stats = switchyard_rq.queue_stats(self._connection, self.queues)
        except Exception as exc:
            self._redis_failed(exc)
            return
        if self._redis_ok is False:
            log.info("ready: Redis at %s answers", switchyard_rq.redact_url(self.redis_url))
        self._redis_ok = True
        self.queue_stats = stats
        if self._metrics_dir is not None:
            try:
                self.flow = switchyard_rq.flow_stats(self._connection)
            except Exception as exc:
                log.debug("cannot read the flow control state: %s", exc)
        depth = sum(s.depth for s in stats.values())
        age = max((s.oldest_age for s in stats.values()), default=0.0)
        self._depth, self._age = depth, age
        with self._lock:
            current = sum(1 for c in self._children if not c.retiring)
        decision = decide(self._policy, self._state, Observation(depth, age, current))
        self._state = decision.state
        if decision.target != self._target:
            log.info("scaling %d -> %d processes: %s", current, decision.target, decision.reason)
            if decision.target > self._target:
                self.counters.scaled_up += 1
            else:
                self.counters.scaled_down += 1
            self._target = decision.target
        self._publish(stats)

    def _publish(self, stats: Mapping[str, switchyard_rq.QueueStats]) -> None:
        """The pool's gauges in Redis, for `switchyard top` on any machine."""
        with self._lock:
            active = [c for c in self._children if not c.retiring]
        values = {
            "processes": len(active),
            "serving": sum(1 for c in active if c.ready.is_set()),
            "min": self.settings.min_processes,
            "max": self.settings.max_processes,
            "target": self._target,
            "busy": sum(s.started for s in stats.values()),
            "recycled": self.counters.recycled,
            "died": self.counters.died,
            "scaled_up": self.counters.scaled_up,
            "scaled_down": self.counters.scaled_down,
        }
        try:
            switchyard_rq.publish_pool_stats(self._connection, self._prefix, values)
        except Exception as exc:
            log.debug("cannot publish pool stats: %s", exc)

    # ------------------------------------------------------------------ children

    def _fill(self) -> None:
        """Start or retire children until the non-retiring ones match the target."""
        if self._stopping:
            return
        with self._lock:
            active = [c for c in self._children if not c.retiring]
        if len(active) > self._target:
            # retire the youngest: the oldest are the warmest
            for child in sorted(active, key=lambda c: c.started)[self._target :]:
                child.retiring = True
                self._terminate(child)
            return
        if len(active) < self._target and time.monotonic() >= self._hold_until:
            for _ in range(self._target - len(active)):
                self._spawn()

    def _spawn(self) -> None:
        self._seq += 1
        name = f"{self._prefix}.{self._seq}"
        spec = ChildSpec(
            name=name,
            queues=self.queues,
            redis_url=self.redis_url,
            manifest=os.fspath(self.boot.manifest) if self.boot.manifest else None,
            max_jobs=self.settings.max_jobs,
            idle_timeout=_IDLE_TIMEOUT,
            concurrency=self.settings.concurrency,
            # a child gives up its running jobs itself a little before it would be killed
            grace=max(self.settings.grace - 1.0, self.settings.grace * 0.5),
            log_level=logging.DEBUG if self.settings.debug else logging.INFO,
            log_format=self.settings.log_format,
            job_log=self.settings.job_log,
            metrics=self.settings.metrics,
            metrics_dir=self._metrics_dir.path if self._metrics_dir is not None else None,
        )
        ready = self._ctx.Event()
        process = self._ctx.Process(
            target=child_main, args=(spec, ready, self._lifeline), name=name, daemon=False
        )
        process.start()
        with self._lock:
            self._children.append(_Child(name, process, time.monotonic(), ready))
        self.counters.started += 1
        log.debug("started %s (pid %s)", name, process.pid)

    def _reap(self) -> None:
        with self._lock:
            dead = [c for c in self._children if not c.process.is_alive()]
            self._children = [c for c in self._children if c not in dead]
        for child in dead:
            child.process.join(0)
            if self._metrics_dir is not None:
                self._metrics_dir.mark_dead(child.process.pid)
            code = child.process.exitcode
            lived = time.monotonic() - child.started
            if child.retiring:
                log.debug("%s retired", child.name)
            elif code == 0:
                self.counters.recycled += 1
                log.info("%s recycled after %.1fs", child.name, lived)
            else:
                self.counters.died += 1
                how = _describe_exit(code)
                log.warning("%s %s after %.1fs; replacing it", child.name, how, lived)
                if code != EXIT_BOOT_FAILED:
                    self._recover([child.name])
                # a crash loop (not a kill from outside) waits before its next start
                if lived < _QUICK_DEATH and code not in (-signal.SIGKILL, -signal.SIGTERM):
                    self._hold_until = time.monotonic() + self._hold
                    self._hold = min(self._hold * 2, _MAX_HOLD)
                else:
                    self._hold = 0.5

    def _recover(self, dead: list[str] | None) -> None:
        """Requeue (or fail, if not idempotent) the jobs held by dead consumers.

        Our own children are judged by whether their process is alive (so a SIGKILLed child's
        job is back in its queue at once); other supervisors' consumers by their heartbeats.
        """
        with self._lock:
            alive = [c.name for c in self._children if c.process.is_alive()]
        try:
            ids = switchyard_rq.recover_orphans(
                self._connection, alive_names=alive, prefix=self._prefix + "."
            )
        except Exception as exc:
            self._redis_failed(exc)
            return
        if ids:
            self.counters.recovered_jobs += len(ids)
            whose = ", ".join(dead) if dead else "dead workers"
            log.warning("recovered %d job(s) from %s: %s", len(ids), whose, ", ".join(ids[:5]))

    def _terminate(self, child: _Child) -> None:
        if child.process.is_alive():
            with contextlib.suppress(OSError):  # already gone
                child.process.terminate()

    # ------------------------------------------------------------------ stopping

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # pipe full: a wake-up is already pending
            os.write(self._wake_w, bytes([signum]))

    def _drain_wakeups(self) -> bool:
        try:
            data = os.read(self._wake_r, 64)
        except BlockingIOError:
            return False
        self._signals += len(data)
        return bool(data)

    def _shutdown(self) -> int:
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.stop()  # no firing while the pool drains; the lease goes at once
        grace = self.settings.grace
        with self._lock:
            children = list(self._children)
        log.info("stopping: %d process(es), up to %.1fs for in-flight jobs", len(children), grace)
        for child in children:
            self._terminate(child)
        deadline = time.monotonic() + grace
        forced = False
        while any(c.process.is_alive() for c in children):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sentinels = [c.process.sentinel for c in children if c.process.is_alive()]
            ready = mp_connection.wait([*sentinels, self._wake_r], timeout=left)
            if ready and self._wake_r not in ready:
                # a child's pipe closes a moment before the child can be reaped: don't spin
                time.sleep(0.005)
            before = self._signals
            self._drain_wakeups()
            if self._signals > before:
                log.warning("second signal: stopping now")
                forced = True
                break
        late = [c for c in children if c.process.is_alive()]
        for child in late:
            child.process.kill()
            child.process.join(5)
        if late:
            log.warning("%d process(es) did not finish in time; their jobs are requeued", len(late))
            self._recover([c.name for c in late])
        for child in children:
            child.process.join(1)
        with self._lock:
            self._children.clear()
        log.info("stopped")
        return 1 if forced else 0

    def _redis_failed(self, exc: Exception) -> None:
        self.counters.redis_errors += 1
        if self._redis_ok is not False:  # said once per outage
            check = switchyard_rq.check_redis(self.redis_url)
            why = str(check) if check.problem else f"Redis at {check.url} failed: {exc}"
            log.warning("not ready: %s; retrying", why)
        self._redis_ok = False

    def check_redis(self) -> switchyard_rq.RedisCheck:
        """PING Redis once, now (at start, for the boot line). Unreachable: say so, and keep
        trying (it may come up later). Credentials refused: raise RedisUnavailableError, as
        they will not fix themselves."""
        check = switchyard_rq.check_redis(self.redis_url)
        if check.refused and check.error is not None:
            raise switchyard_rq.RedisUnavailableError(check.url, check.error)
        if check.problem is None:
            self._redis_ok = True
        else:
            self.counters.redis_errors += 1
            self._redis_ok = False
            log.warning("not ready: %s; retrying until it answers", check)
        return check


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "vanished"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    if code == EXIT_BOOT_FAILED:
        return "could not build its registry"
    return f"exited with code {code}"
