"""Log output of the supervisor and the pool processes: human-readable lines, or JSON lines.

A job's outcome is one record on ``switchyard.jobs`` (from ``switchyard_rq.Consumer``) carrying
``action, job_id, queue, attempt, outcome, seconds, waited, error_type``: in text it reads as its
message, in JSON those are top-level fields. No payload, result or error message is logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from typing import Any, Final

import switchyard_rq

__all__ = ["FORMATS", "JobLines", "JsonFormatter", "TextFormatter", "configure_logging"]

FORMATS: Final = ("text", "json")


def _stamp(created: float, cache: list[Any], fmt: str) -> str:
    """``fmt`` of the second ``created`` falls in (strftime once a second, not once a line)."""
    second = int(created)
    if cache[0] != second:
        cache[0], cache[1] = second, time.strftime(fmt, time.gmtime(second))
    return f"{cache[1]}.{int((created - second) * 1000):03d}"


def _level(report: switchyard_rq.JobReport) -> str:
    return "INFO" if report.outcome == "succeeded" else "WARNING"


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> [<process>] <logger>: <message>``."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process
        self._cache: list[Any] = [None, ""]

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{_stamp(record.created, self._cache, '%Y-%m-%d %H:%M:%S')} {record.levelname} "
            f"[{self._process}] {record.name}: {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line

    def job_line(self, report: switchyard_rq.JobReport, created: float) -> str:
        """The line a ``switchyard.jobs`` record of ``report`` would format to."""
        return (
            f"{_stamp(created, self._cache, '%Y-%m-%d %H:%M:%S')} {_level(report)} "
            f"[{self._process}] switchyard.jobs: {report.message()}"
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, process, message, and a job's fields."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process
        self._cache: list[Any] = [None, ""]

    def format(self, record: logging.LogRecord) -> str:
        job = getattr(record, "job", None)
        if isinstance(job, switchyard_rq.JobReport) and not record.exc_info:
            return self.job_line(job, record.created)
        entry = self._head(record.created, record.levelname.lower(), record.name)
        entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))

    def job_line(self, report: switchyard_rq.JobReport, created: float) -> str:
        """The line a ``switchyard.jobs`` record of ``report`` would format to."""
        entry = self._head(created, _level(report).lower(), "switchyard.jobs")
        entry["event"] = "job"
        entry.update(report._asdict())
        entry["seconds"] = round(report.seconds, 6)
        if report.waited is not None:
            entry["waited"] = round(report.waited, 6)
        return json.dumps(entry, separators=(",", ":"))

    def _head(self, created: float, level: str, logger: str) -> dict[str, Any]:
        return {
            "ts": _stamp(created, self._cache, "%Y-%m-%dT%H:%M:%S") + "Z",
            "level": level,
            "logger": logger,
            "process": self._process,
        }


#: ``--job-log`` -> the level of the ``switchyard.jobs`` logger (successes log at INFO, failures
#: and retries at WARNING)
JOB_LOG_LEVELS: Final = {
    "all": logging.NOTSET,
    "failures": logging.WARNING,
    "off": logging.CRITICAL,
}
_FLUSH_EVERY: Final = 0.25


class _BufferedStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to a block-buffered copy of stderr, flushed every 0.25 s, at once for warnings
    and errors, and at exit (``logging.shutdown``): one write a batch of job lines, not one
    each."""

    def __init__(self) -> None:
        super().__init__(open(sys.stderr.fileno(), "w", buffering=1 << 16, closefd=False))  # noqa: SIM115
        thread = threading.Thread(target=self._flusher, name="switchyard-log-flush", daemon=True)
        thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)  # StreamHandler.emit flushes: see flush()
        if record.levelno >= logging.WARNING and record.name != "switchyard.jobs":
            self._flush_now()

    def flush(self) -> None:
        """Called by StreamHandler.emit after every record: deferred to the flusher thread."""

    def _flush_now(self) -> None:
        lock = self.lock
        if lock is None:
            return
        with lock, contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def _flusher(self) -> None:
        while True:
            time.sleep(_FLUSH_EVERY)
            self._flush_now()

    def close(self) -> None:
        self._flush_now()
        super().close()


class JobLines:
    """A consumer's observer that writes each job's line itself, straight into the log stream:
    the very line a ``switchyard.jobs`` record would give, without building a LogRecord and
    passing it through the logging machinery (on a trivial job, that was nearly a third of the
    pool process's CPU). Use it with ``Consumer(log_jobs=False)``."""

    __slots__ = ("_failures", "_handler", "_line", "_successes")

    def __init__(self, handler: logging.StreamHandler, job_log: str) -> None:  # type: ignore[type-arg]
        formatter = handler.formatter
        assert isinstance(formatter, TextFormatter | JsonFormatter)
        self._handler = handler
        self._line = formatter.job_line
        self._successes = job_log == "all"
        self._failures = job_log in ("all", "failures")

    def job_done(self, report: switchyard_rq.JobReport) -> None:
        if not (self._successes if report.outcome == "succeeded" else self._failures):
            return
        line = self._line(report, time.time())
        handler = self._handler
        with handler.lock:  # type: ignore[union-attr]
            handler.stream.write(line + "\n")


def configure_logging(
    level: int, log_format: str, process: str, *, job_log: str = "all"
) -> logging.StreamHandler:  # type: ignore[type-arg]
    """Route the root logger to stderr in ``log_format`` ("text" or "json"); ``job_log`` says
    which job outcomes get their line. Returns the handler (for :class:`JobLines`).

    A pool process may log thousands of job lines a second, so records skip what no line shows
    (caller frame, thread and process names: the logging HOWTO's "Optimization") and lines are
    written in batches."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = _BufferedStderr()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(TextFormatter(process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("switchyard.jobs").setLevel(JOB_LOG_LEVELS.get(job_log, logging.NOTSET))
    return handler
