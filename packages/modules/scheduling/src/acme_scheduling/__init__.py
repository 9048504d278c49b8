"""Cron schedules for Switchyard: a 5-field cron parser, next run times, and descriptions.

The actions live in :mod:`acme_scheduling.actions`; the parser and iterator below are the
package's API.
"""

from __future__ import annotations

from acme_scheduling._cron import CronError, CronSchedule, parse_cron
from acme_scheduling._describe import describe_schedule
from acme_scheduling._runs import is_due, iter_runs

__all__ = ["CronError", "CronSchedule", "describe_schedule", "is_due", "iter_runs", "parse_cron"]
