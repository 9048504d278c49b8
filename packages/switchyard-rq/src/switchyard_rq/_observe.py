"""What a consumer tells about each job it ran: a :class:`JobReport` to an optional observer
(metrics) and one structured log line on the ``switchyard.jobs`` logger."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import NamedTuple, Protocol

__all__ = ["JOB_LOG", "JobObserver", "JobReport", "log_job", "wait_seconds"]

#: one line per job outcome; records carry the :class:`JobReport` as ``record.job``
JOB_LOG = logging.getLogger("switchyard.jobs")


class JobReport(NamedTuple):
    """One job run: ``outcome`` is ``succeeded``, ``failed`` or ``retried`` (failed, will run
    again); ``seconds`` its run time, ``waited`` the seconds from enqueue to start (None if the
    job hash has no ``enqueued_at``). No payload, no result, no error message: those can hold
    personal data; ``error_type`` is the exception's class name."""

    action: str | None
    job_id: str
    queue: str
    attempt: int
    outcome: str
    seconds: float
    waited: float | None
    error_type: str | None

    def message(self) -> str:
        """The job's log line: ``succeeded geo.distance job=<id> queue=default attempt=1
        0.4ms`` (a failure or retry ends with the error's type)."""
        error = f" {self.error_type}" if self.error_type else ""
        return (
            f"{self.outcome} {self.action or '?'} job={self.job_id} queue={self.queue} "
            f"attempt={self.attempt} {self.seconds * 1000:.1f}ms{error}"
        )


class JobObserver(Protocol):
    """Receives a report per job, in the consumer's thread, right after the job ran: keep it
    cheap (a few microseconds), e.g. count into memory and publish from another thread."""

    def job_done(self, report: JobReport) -> None: ...


_PARSED: dict[bytes, float] = {}


def wait_seconds(enqueued_at: bytes | None, started: float) -> float | None:
    """Seconds from ``enqueued_at`` (RQ's ``%Y-%m-%dT%H:%M:%S.%fZ``) to ``started`` (unix s)."""
    if not enqueued_at:
        return None
    when = _PARSED.get(enqueued_at)
    if when is None:
        try:
            when = datetime.fromisoformat(enqueued_at.decode()).timestamp()
        except ValueError:
            return None
        if len(_PARSED) > 1024:  # jobs of one batch share a stamp: a tiny cache is enough
            _PARSED.clear()
        _PARSED[enqueued_at] = when
    return max(started - when, 0.0)


def log_job(report: JobReport) -> None:
    """The job's one log line: INFO for a success, WARNING for a failure or retry."""
    level = logging.INFO if report.outcome == "succeeded" else logging.WARNING
    if JOB_LOG.isEnabledFor(level):
        JOB_LOG.log(level, "%s", report.message(), extra={"job": report})
