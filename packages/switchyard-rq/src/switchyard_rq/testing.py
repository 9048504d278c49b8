"""Test helpers for the transport: :class:`MemorySource`, jobs in memory for the real consumer.

::

    from switchyard_rq import Consumer
    from switchyard_rq.testing import MemorySource

    source = MemorySource()
    job_id = source.put("geo.distance", {...}, registry=reg)
    with Consumer(source, registry=reg, concurrency=8) as consumer:
        consumer.run(max_jobs=1)
    assert source.outcome(job_id).ok

The consumer runs each job exactly as it would from Redis (validation, hooks, lanes, timeouts,
retries); only where the jobs wait and where their outcomes go is different. Flow control
(concurrency and rate limits, breakers) and priorities live in Redis, so they do not apply here.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, final

from switchyard import Registry, default_registry

from switchyard_rq._consumer.source import Job, Outcome, Watched, WorkerCounts
from switchyard_rq._wire.jobs import encode_data

__all__ = ["Job", "MemorySource", "Outcome"]


@dataclass(slots=True)
class _Entry:
    id: str
    queue: str
    data: bytes
    retries_left: int | None
    intervals: list[float] | None
    tries: int = 0
    attempt: int = 0
    due: float = 0.0


@final
class MemorySource:
    """A :class:`~switchyard_rq.JobSource` that keeps its queues and outcomes in memory.

    Thread-safe: a test may :meth:`put` jobs from another thread while a consumer runs.
    """

    def __init__(self, queues: Sequence[str] = ("default",), *, name: str = "memory") -> None:
        self.name = name
        self.queues = tuple(queues)
        self.outcomes: list[Outcome] = []
        self.announced = self.retired = False
        self.beats: list[WorkerCounts] = []
        self.renewed: list[str] = []
        #: the progress reports the consumer stored, by job id (the latest)
        self.progress: dict[str, str] = {}
        #: the ids of the running jobs the heartbeat thread watched, once per watch
        self.watched: list[str] = []
        self._stop: set[str] = set()
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[_Entry]] = {q: deque() for q in self.queues}
        self._later: list[_Entry] = []  # retries waiting for their time
        self._taken: dict[str, _Entry] = {}  # taken and not settled
        self._ids = itertools.count(1)
        self._execs = itertools.count(1)

    # -- for tests ---------------------------------------------------------------------------

    def put(
        self,
        action: str,
        data: Any,
        *,
        registry: Registry | None = None,
        queue: str | None = None,
        raw: bytes | None = None,
    ) -> str:
        """Enqueue a job of ``action`` with ``data``, validated as ``schedule_action`` does
        (``raw`` puts the job's data field as given, unchecked). Returns the job's id."""
        retries: int | None = None
        intervals: list[float] | None = None
        if raw is None:
            resolved = (registry or default_registry()).resolve(action)
            payload = resolved.validate_input(data).model_dump_json()
            raw = encode_data(action, payload)
            policy = resolved.policy
            if policy.retries:
                retries = policy.retries
                intervals = [policy.backoff * 2**n for n in range(policy.retries)]
        entry = _Entry(f"m{next(self._ids)}", queue or self.queues[0], raw, retries, intervals)
        with self._cond:
            self._waiting[entry.queue].append(entry)
            self._cond.notify_all()
        return entry.id

    def outcome(self, job_id: str) -> Outcome | None:
        """The last outcome of job ``job_id`` (None while it has none)."""
        with self._cond:
            for outcome in reversed(self.outcomes):
                if outcome.job.id == job_id:
                    return outcome
        return None

    def result(self, job_id: str) -> Any:
        """The output (as JSON data) of a job that succeeded."""
        outcome = self.outcome(job_id)
        if outcome is None or not outcome.ok or outcome.result is None:
            raise LookupError(f"job {job_id} has not succeeded: {outcome}")
        return json.loads(outcome.result)

    def pending(self) -> int:
        """Jobs waiting (now or later) and taken but not settled."""
        with self._cond:
            return sum(len(q) for q in self._waiting.values()) + len(self._later) + len(self._taken)

    # -- JobSource -----------------------------------------------------------------------------

    async def take(
        self, size: int, *, running: int, held: int, idle_for: float, patient: bool = False
    ) -> list[Job]:
        del running, held, idle_for, patient
        now = time.time()
        jobs: list[Job] = []
        with self._cond:
            self._promote(now)
            for queue in self.queues:
                waiting = self._waiting[queue]
                while waiting and len(jobs) < size:
                    entry = waiting.popleft()
                    entry.attempt += 1
                    self._taken[entry.id] = entry
                    jobs.append(self._job(entry, now))
        return jobs

    def _promote(self, now: float) -> None:
        for entry in [e for e in self._later if e.due <= now]:
            self._later.remove(entry)
            self._waiting[entry.queue].append(entry)

    def _job(self, entry: _Entry, now: float) -> Job:
        return Job(
            id=entry.id,
            queue=entry.queue,
            data=entry.data,
            retries_left=entry.retries_left,
            retry_intervals=entry.intervals,
            number_of_retries=entry.tries,
            result_ttl=None,
            failure_ttl=None,
            attempt=entry.attempt,
            execution=f"x{next(self._execs)}",
            started_at=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now)),
            started_ts=now,
        )

    def more(self) -> bool:
        return False

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(self._waiting.values()):
                due = min((e.due for e in self._later), default=None)
                left = deadline - time.monotonic()
                if due is not None:
                    left = min(left, due - time.time())
                if left <= 0:
                    return
                self._cond.wait(left)

    def settle(self, outcome: Outcome, *, later: bool = False) -> None:
        with self._cond:
            entry = self._taken.pop(outcome.job.id, None)
            if entry is None:
                return  # given up meanwhile
            self.outcomes.append(outcome)
            if outcome.progress is not None:
                self.progress[outcome.job.id] = outcome.progress
            if outcome.mode == "retry":
                entry.retries_left = (entry.retries_left or 1) - 1
                entry.tries += 1
                entry.due = outcome.retry_due or 0.0
                if entry.due > time.time():
                    self._later.append(entry)
                else:
                    self._waiting[entry.queue].append(entry)
            self._cond.notify_all()

    def flush(self) -> None:
        return None

    def push(self) -> None:
        return None

    def give_back(self, keep: Sequence[str]) -> int:
        with self._cond:
            back = [e for i, e in self._taken.items() if i not in keep]
            for entry in reversed(back):
                del self._taken[entry.id]
                entry.attempt -= 1
                self._waiting[entry.queue].appendleft(entry)
            self._cond.notify_all()
        return 0

    def abandon(self) -> list[str]:
        with self._cond:
            ids = list(self._taken)
            for entry in reversed(list(self._taken.values())):
                self._waiting[entry.queue].appendleft(entry)
            self._taken.clear()
            self._cond.notify_all()
        return ids

    def resume(self, keep: Sequence[str]) -> int:
        return 0

    def announce(self) -> int:
        self.announced = True
        return 0

    def beat(self, counts: WorkerCounts) -> None:
        self.beats.append(counts)

    def renew(self, jobs: Sequence[Job]) -> None:
        self.renewed.extend(job.id for job in jobs)

    def cancel(self, job_id: str) -> None:
        """Ask job ``job_id`` to stop (as ``JobHandle.cancel()`` does a running job)."""
        with self._cond:
            self._stop.add(job_id)

    def watch(self, jobs: Sequence[Watched]) -> list[str]:
        with self._cond:
            self.watched.extend(w.job.id for w in jobs)
            for watched in jobs:
                if watched.progress is not None:
                    self.progress[watched.job.id] = watched.progress
            return [w.job.id for w in jobs if w.job.id in self._stop]

    def retire(self) -> None:
        self.retired = True
