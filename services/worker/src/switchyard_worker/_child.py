"""One pool process: a warm ``switchyard_rq.Consumer`` over the served queues.

Started by the supervisor with the ``forkserver`` context: forked from a clean server process
that has imported the transport but holds no Redis sockets, locks or threads. Handlers stay
imported between jobs; the process leaves after ``max_jobs`` jobs (exit 0, the supervisor starts
a fresh one) or when told to stop.

SIGTERM and SIGINT set the stop event: the consumer takes no new job, gives back the ones it took
and did not start, lets the running ones end (for up to ``grace`` seconds; then it gives them up,
to run again or, if not idempotent, fail), and the process exits 0; so does the death of the
supervisor, seen on a lifeline pipe. Redis errors are retried with
backoff (by the consumer, and here for anything that escapes it), so a Redis restart costs a
reconnect, not a process.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Final, Protocol, final

if TYPE_CHECKING:
    import switchyard_rq

__all__ = ["EXIT_BOOT_FAILED", "EXIT_ORPHANED", "ChildSpec", "child_main"]

#: exit code of a child whose registry could not be built (the supervisor does not respawn it fast)
EXIT_BOOT_FAILED: Final = 3
#: exit code of a child that left, busy, long after its supervisor died
EXIT_ORPHANED: Final = 4
_MAX_BACKOFF: Final = 5.0
_ORPHAN_WAIT: Final = 30.0  # with no grace given
_ORPHAN_MARGIN: Final = 5.0


class _Flag(Protocol):
    def is_set(self) -> bool: ...
    def set(self) -> None: ...


@final
@dataclass(frozen=True, slots=True)
class ChildSpec:
    """What a child needs to know; plain data, so it pickles to the forkserver."""

    name: str
    queues: tuple[str, ...]
    redis_url: str
    manifest: str | None
    max_jobs: int | None
    idle_timeout: float
    log_level: int
    log_format: str = "text"
    job_log: str = "all"
    metrics: bool = False
    #: prometheus_client's multiprocess folder (None: no Prometheus files, Redis stats only)
    metrics_dir: str | None = None
    concurrency: int = 1
    #: seconds the running jobs get to end once the process is told to stop (None: no limit)
    grace: float | None = None


class _Observers:
    """Reports to each observer in turn (the job's log line first: it cannot fail)."""

    __slots__ = ("_observers",)

    def __init__(self, *observers: switchyard_rq.JobObserver | None) -> None:
        self._observers = [o for o in observers if o is not None]

    def job_done(self, report: switchyard_rq.JobReport) -> None:
        for observer in self._observers:
            observer.job_done(report)


def _hold_lifeline(
    lifeline: Connection, stop: threading.Event, log: logging.Logger, grace: float | None
) -> None:
    """Stop (gracefully) when the supervisor is gone, however it went: a pool never outlives
    its supervisor.

    ``lifeline`` is the read end of a pipe whose write end only the supervisor holds (neither
    the forkserver nor any pool process has it), so it reads EOF the moment the supervisor
    dies, SIGKILL included; the parent pid would not tell, as the forkserver is our parent. The
    job in hand gets ``grace`` seconds, as on SIGTERM; a process still busy a few seconds after
    that (an inline job cannot be interrupted) leaves anyway, its job left to the recovery of
    dead consumers' jobs (by heartbeat) of whichever supervisor runs next."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            wait([lifeline])
        if not stop.is_set():
            log.warning("the supervisor is gone; stopping after the job in hand")
            stop.set()
        time.sleep((_ORPHAN_WAIT if grace is None else grace) + _ORPHAN_MARGIN)
        log.error("still busy %.0f s after the supervisor went; leaving", grace or _ORPHAN_WAIT)
        logging.shutdown()
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="switchyard-worker-lifeline", daemon=True).start()


def child_main(
    spec: ChildSpec, ready: _Flag | None = None, lifeline: Connection | None = None
) -> None:
    """Run a consumer until stopped or recycled; the process's exit code says which.

    ``ready`` is set once the consumer is registered with Redis and waiting for jobs;
    ``lifeline`` reads EOF when the supervisor is gone (see :func:`_hold_lifeline`).
    """
    started = time.perf_counter()
    from ._logs import JobLines, configure_logging

    handler = configure_logging(spec.log_level, spec.log_format, spec.name, job_log=spec.job_log)
    log = logging.getLogger("switchyard_worker.child")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: where is it stuck?
    if lifeline is not None:
        _hold_lifeline(lifeline, stop, log, spec.grace)

    # already imported by the forkserver (preload); here for clarity and for a plain spawn
    import switchyard
    import switchyard_rq

    try:
        if spec.manifest is not None:
            registry = switchyard.Registry.from_manifest(Path(spec.manifest))
        else:
            registry = switchyard.Registry.from_entry_points()
    except switchyard.SwitchyardError as exc:
        log.error("cannot build the registry: %s", exc)
        sys.exit(EXIT_BOOT_FAILED)
    switchyard.set_default_registry(registry)
    metrics = None
    if spec.metrics:
        from ._metrics import ChildMetrics

        connection = switchyard_rq.get_connection(spec.redis_url)
        metrics = ChildMetrics(spec.name, spec.metrics_dir, connection)

    observer = _Observers(JobLines(handler, spec.job_log), metrics)

    remaining = spec.max_jobs
    backoff = 0.1
    done = 0
    while not stop.is_set():
        try:
            connection = switchyard_rq.get_connection(spec.redis_url)
            consumer = switchyard_rq.Consumer(
                connection,
                spec.queues,
                registry=registry,
                name=spec.name,
                observer=observer,
                log_jobs=False,  # JobLines writes them
                concurrency=spec.concurrency,
            )
            if metrics is not None:
                metrics.attach(consumer)
            try:
                if ready is not None and not ready.is_set():
                    consumer.register()
                    # what is loaded by now (switchyard, the transport, pydantic, the registry)
                    # lives as long as the process: keep it out of the cyclic GC's full
                    # collections, each several milliseconds on a busy machine: the jobs' p99
                    gc.freeze()
                    ready.set()
                    log.debug("ready in %.0f ms", (time.perf_counter() - started) * 1000)
                ran = consumer.run(
                    stop=stop,
                    max_jobs=remaining,
                    idle_timeout=spec.idle_timeout,
                    grace=spec.grace,
                )
            finally:
                consumer.close()
        except Exception as exc:  # Redis down or restarting: back off and reconnect
            log.warning(
                "consumer stopped: %s: %s; retrying in %.1fs", type(exc).__name__, exc, backoff
            )
            stop.wait(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
            continue
        backoff = 0.1
        done += ran
        if remaining is not None:
            remaining -= ran
            if remaining <= 0:
                log.info("recycling after %d jobs", done)
                break
    if metrics is not None:
        metrics.close()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # skip interpreter teardown of plugin modules; all results are already in Redis
    os._exit(0)
