"""The seam between the job loop and where its jobs come from: :class:`JobSource`.

The loop takes :class:`Job` values from a source, runs them, and hands each :class:`Outcome`
back; it never speaks Redis. :class:`~switchyard_rq._consumer.link.RedisLink` is the source over
Redis (RQ's layout, the Lua scripts); :class:`~switchyard_rq.testing.MemorySource` keeps jobs in
memory, for tests of the loop without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from switchyard_rq._errors import JobError

__all__ = ["Job", "JobSource", "Outcome", "SourceUnavailable", "Watched", "WorkerCounts"]


class SourceUnavailable(Exception):
    """The source cannot be reached now (Redis down or restarting): retry later."""


@dataclass(slots=True)
class Job:
    """One job taken by a consumer: what the source read of it, and this execution's identity."""

    id: str
    queue: str
    data: bytes | None
    retries_left: int | None
    retry_intervals: list[float] | None
    number_of_retries: int
    result_ttl: int | None
    failure_ttl: int | None
    attempt: int
    execution: str
    started_at: str  # RQ's format
    started_ts: float  # unix seconds
    enqueued_at: bytes | None = None  # RQ format, for the queue-wait metric
    trace: bytes | None = None  # the producer's trace context (JSON), see _tracing
    flow: bytes | None = None  # the job's limiters (JSON), see _wire/flow.py
    workflow: bytes | None = None  # the workflow it is a step of (see _wire/workflow.py)


@dataclass(slots=True)
class Outcome:
    """How a run ended: ``ok`` (``result`` is the output model's JSON), ``fail``, ``retry``
    (``error``; a retry is due at ``retry_due``, unix seconds, or now when None) or ``cancel``
    (it stopped when asked to). ``progress``: its last progress report (JSON), if it made one."""

    job: Job
    mode: Literal["ok", "fail", "retry", "cancel"]
    seconds: float
    action: str | None
    result: str | None = None
    error: JobError | None = None
    retry_due: float | None = None
    #: a failure that counts for the action's circuit breaker (the handler failed or timed out)
    trips: bool = False
    progress: str | None = None

    @property
    def ok(self) -> bool:
        return self.mode == "ok"

    @property
    def error_type(self) -> str | None:
        return self.error.type if self.error is not None else None


@dataclass(slots=True)
class WorkerCounts:
    """What a consumer did since its last heartbeat (for RQ's worker hash)."""

    succeeded: int = 0
    failed: int = 0
    busy_seconds: float = 0.0


@dataclass(slots=True)
class Watched:
    """A job running for a while, as the heartbeat thread hands it to :meth:`JobSource.watch`:
    its action, and its latest progress report (JSON) if that is not stored yet."""

    job: Job
    action: str
    progress: str | None


class JobSource(Protocol):
    """Where one consumer's jobs come from and where their outcomes go.

    The loop calls every method from one thread (``take`` is a coroutine on its event loop),
    except :meth:`wait`, :meth:`beat`, :meth:`renew` and :meth:`watch`, which a source must
    allow from a second thread meanwhile. Errors that a later call may get over raise
    :class:`SourceUnavailable`.
    """

    name: str
    queues: tuple[str, ...]

    async def take(
        self, size: int, *, running: int, held: int, idle_for: float, patient: bool = False
    ) -> list[Job]:
        """Store the outcomes settled so far and take up to ``size`` jobs; the first
        ``running`` of them start now (the rest wait in the consumer's hands). ``held``: jobs
        the consumer holds now (running or waiting); ``idle_for``: how long it will wait if
        nothing comes; ``patient``: other tasks run on the loop, do not block it."""
        ...

    def more(self) -> bool:
        """Whether the last :meth:`take` left jobs it could not hand out yet (deferred
        ones): take again before waiting."""
        ...

    def wait(self, timeout: float) -> None:
        """Block until a job may be there to take, or ``timeout`` seconds passed."""
        ...

    def settle(self, outcome: Outcome, *, later: bool = False) -> None:
        """Record an outcome: sent now (stored with the next call that reads a reply), or with
        ``later`` kept for the next :meth:`take`, :meth:`push` or :meth:`flush`."""
        ...

    def push(self) -> None:
        """Send the outcomes kept for later, without waiting for the source to confirm them."""
        ...

    def flush(self) -> None:
        """Store every outcome settled so far."""
        ...

    def give_back(self, keep: Sequence[str]) -> int:
        """Put the jobs taken and not run back where they came from, in order (after
        :meth:`flush`); ``keep`` are the ids of jobs still running. Returns how many it gave
        back."""
        ...

    def abandon(self) -> list[str]:
        """Give up the jobs still running (the consumer stops without waiting for them): each
        is settled as a dead worker's would be. Returns their ids."""
        ...

    def resume(self, keep: Sequence[str]) -> int:
        """After :class:`SourceUnavailable`: store pending outcomes, give back every job taken
        but ``keep`` (the running ones), announce the consumer again. Returns how many jobs it
        gave back."""
        ...

    # -- presence ----------------------------------------------------------------------------

    def announce(self) -> int:
        """Register the consumer (after settling what an earlier consumer of its name left;
        returns how many such jobs)."""
        ...

    def beat(self, counts: WorkerCounts) -> None:
        """The consumer is alive; ``counts`` is what it did since the last beat."""
        ...

    def renew(self, jobs: Sequence[Job]) -> None:
        """Keep the leases of these running jobs (their limiters') from lapsing."""
        ...

    def watch(self, jobs: Sequence[Watched]) -> list[str]:
        """Store the progress reports of these running jobs; return the ids of those that were
        asked to stop (from the heartbeat thread, at most twice a second)."""
        ...

    def retire(self) -> None:
        """Unregister the consumer (after :meth:`give_back`)."""
        ...
