"""Log output of the supervisor and the pool processes: human-readable lines, or JSON lines.

A job's outcome is one record on ``switchyard.jobs`` (from ``switchyard_rq.Consumer``) carrying
``action, job_id, queue, attempt, outcome, seconds, waited, error_type``: in text it reads as its
message, in JSON those are top-level fields. No payload, result or error message is logged.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final

__all__ = ["FORMATS", "JsonFormatter", "configure_logging"]

FORMATS: Final = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, process, message, and a job's fields."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self._process,
        }
        job = getattr(record, "job", None)
        if isinstance(job, dict):
            entry["event"] = "job"
            entry.update(job)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


#: ``--job-log`` -> the level of the ``switchyard.jobs`` logger (successes log at INFO, failures
#: and retries at WARNING)
JOB_LOG_LEVELS: Final = {
    "all": logging.NOTSET,
    "failures": logging.WARNING,
    "off": logging.CRITICAL,
}


def configure_logging(level: int, log_format: str, process: str, *, job_log: str = "all") -> None:
    """Route the root logger to stderr in ``log_format`` ("text" or "json"); ``job_log`` says
    which job outcomes get their line."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s [{process}] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("switchyard.jobs").setLevel(JOB_LOG_LEVELS.get(job_log, logging.NOTSET))
