"""The worker's options: one frozen dataclass, fed by the command line and the environment.

Every option is also an environment variable ``SWITCHYARD_WORKER_<FIELD>`` (e.g.
``SWITCHYARD_WORKER_MAX_PROCESSES=8``); a command-line flag wins over the environment. Values
are checked by hand against a small table (type, bounds), not by pydantic: the supervisor never
runs a job, and pydantic's import and model build were a third of its boot time.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, final

from ._autoscale import ScalePolicy

__all__ = ["ENV_PREFIX", "FLAGS", "SettingsError", "WorkerSettings"]

ENV_PREFIX: Final = "SWITCHYARD_WORKER_"

_QUEUE_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:"
)
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


@final
class SettingsError(ValueError):
    """A bad value for a setting; ``field`` names it (None for a rule between two settings)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def _default_max() -> int:
    return max(2, os.cpu_count() or 1)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"Input should be a valid integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"Input should be a valid integer, got {value!r}") from None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"Input should be a valid number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"Input should be a valid number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"Input should be a finite number, got {value!r}")
    return number


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"Input should be true or false, got {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"Input should be a non-empty string, got {value!r}")
    return value


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            *rest, last = (repr(a) for a in allowed)
            choices = f"{', '.join(rest)} or {last}" if rest else last
            raise ValueError(f"Input should be {choices}, got {value!r}")
        return str(value)

    return check


def _queues(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(q, str) for q in value):
        raise ValueError(f"Input should be a comma-separated list of queue names, got {value!r}")
    for name in value:
        if not name or not set(name) <= _QUEUE_CHARS:
            raise ValueError(f"bad queue name {name!r}: use letters, digits, _ - . :")
    return tuple(dict.fromkeys(value))


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return value


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value:
        return Path(value)
    raise ValueError(f"Input should be a path, got {value!r}")


@dataclass(frozen=True, slots=True)
class _Rule:
    convert: Callable[[Any], Any]
    low: float | None = None  # the smallest value allowed
    high: float | None = None  # the largest value allowed
    above: float | None = None  # values must be greater than this
    optional: bool = False  # None is allowed

    def apply(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        value = self.convert(value)
        if self.low is not None and value < self.low:
            raise ValueError(f"Input should be greater than or equal to {self.low:g}")
        if self.above is not None and value <= self.above:
            raise ValueError(f"Input should be greater than {self.above:g}")
        if self.high is not None and value > self.high:
            raise ValueError(f"Input should be less than or equal to {self.high:g}")
        return value


_RULES: Final[dict[str, _Rule]] = {
    "queues": _Rule(_queues),
    "min_processes": _Rule(_integer, low=1, high=256),
    "max_processes": _Rule(_integer, low=1, high=256),
    "max_jobs": _Rule(_integer, low=1, optional=True),
    "concurrency": _Rule(_integer, low=1, high=10_000),
    "grace": _Rule(_number, low=0),
    "health_port": _Rule(_integer, low=0, high=65535),
    "health_host": _Rule(_text),
    "redis_url": _Rule(_url, optional=True),
    "manifest": _Rule(_path, optional=True),
    "scale_interval": _Rule(_number, above=0, high=60),
    "scale_backlog": _Rule(_integer, low=1),
    "scale_max_wait": _Rule(_number, above=0),
    "scale_up_ticks": _Rule(_integer, low=1),
    "scale_down_ticks": _Rule(_integer, low=1),
    "recover_interval": _Rule(_number, above=0),
    "metrics": _Rule(_flag),
    "schedules": _Rule(_flag),
    "schedule_lease": _Rule(_number, low=0.5, high=300),
    "log_format": _Rule(_choice("text", "json")),
    "job_log": _Rule(_choice("all", "failures", "off")),
    "debug": _Rule(_flag),
}


@final
@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything ``switchyard-worker`` can be told; defaults need no configuring.

    Values given as strings (from the environment) are converted; a bad value raises
    :class:`SettingsError` naming the setting.
    """

    #: queues to serve; empty means every queue the registry routes to
    queues: tuple[str, ...] = ()
    min_processes: int = 1
    max_processes: int = field(default_factory=_default_max)
    #: recycle a process after this many jobs (None: never)
    max_jobs: int | None = None
    #: jobs running at once in each process: async handlers, and sync ones of io_bound actions
    #: (other sync handlers run one at a time); see docs/workers.md
    concurrency: int = 16
    #: seconds in-flight jobs get to finish on SIGTERM/SIGINT
    grace: float = 30.0
    #: 0 turns the health server off
    health_port: int = 0
    health_host: str = "127.0.0.1"
    #: default: switchyard_rq.redis_url()
    redis_url: str | None = None
    #: default: the project's config
    manifest: Path | None = None
    scale_interval: float = 1.0
    #: waiting jobs per process that count as busy
    scale_backlog: int = 20
    #: the oldest waiting job's age (s) that counts as busy
    scale_max_wait: float = 1.0
    scale_up_ticks: int = 2
    scale_down_ticks: int = 30
    #: seconds between sweeps for the jobs of dead consumers
    recover_interval: float = 5.0
    #: per-job metrics (/metrics, switchyard top)
    metrics: bool = True
    #: run a scheduler (it fires the schedules while it holds the lease; see docs/schedules.md)
    schedules: bool = True
    #: seconds the schedulers' lease lasts unless renewed (a dead holder's successor takes over
    #: within this; ticks up to twice this late still fire)
    schedule_lease: float = 5.0
    log_format: Literal["text", "json"] = "text"
    job_log: Literal["all", "failures", "off"] = "all"
    debug: bool = False

    def __post_init__(self) -> None:
        for name, rule in _RULES.items():
            try:
                object.__setattr__(self, name, rule.apply(getattr(self, name)))
            except ValueError as exc:
                raise SettingsError(name, str(exc)) from None
        if self.max_processes < self.min_processes:
            raise SettingsError(
                None, f"--max ({self.max_processes}) is smaller than --min ({self.min_processes})"
            )

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
    ) -> WorkerSettings:
        """Settings from ``SWITCHYARD_WORKER_*`` variables, then ``overrides`` (the flags).

        Raises SettingsError for a bad value, or for a ``SWITCHYARD_WORKER_*`` variable or an
        override that names no setting (a typo would otherwise be ignored).
        """
        env = os.environ if environ is None else environ
        names = [f.name for f in fields(cls)]
        known = {ENV_PREFIX + name.upper() for name in names}
        for key in env:
            if key.startswith(ENV_PREFIX) and key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise SettingsError(None, f"unknown setting {key}{hint}")
        values: dict[str, Any] = {}
        for name in names:
            raw = env.get(ENV_PREFIX + name.upper(), "")
            if raw.strip():
                values[name] = raw.strip()
        values.update(overrides or {})
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise SettingsError(None, f"unknown setting {unknown[0]!r}")
        return cls(**values)

    def policy(self) -> ScalePolicy:
        """The autoscaler policy these settings describe."""
        return ScalePolicy(
            min_processes=self.min_processes,
            max_processes=self.max_processes,
            backlog_per_process=self.scale_backlog,
            max_wait=self.scale_max_wait,
            up_ticks=self.scale_up_ticks,
            down_ticks=self.scale_down_ticks,
        )


#: settings field -> the command-line flag that sets it (for error messages)
FLAGS: Final[dict[str, str]] = {
    "queues": "--queues",
    "min_processes": "--min",
    "max_processes": "--max",
    "max_jobs": "--max-jobs",
    "concurrency": "--concurrency",
    "grace": "--grace",
    "health_port": "--health-port",
    "health_host": "--health-host",
    "redis_url": "--redis-url",
    "manifest": "--manifest",
    "scale_interval": "--scale-interval",
    "scale_backlog": "--scale-backlog",
    "scale_max_wait": "--scale-max-wait",
    "scale_up_ticks": "--scale-up-ticks",
    "scale_down_ticks": "--scale-down-ticks",
    "recover_interval": "--recover-interval",
    "metrics": "--no-metrics",
    "schedules": "--no-schedules",
    "schedule_lease": "--schedule-lease",
    "log_format": "--log-format",
    "job_log": "--job-log",
    "debug": "--debug",
}
