"""The worker's options: one pydantic settings model, fed by the command line and the environment.

Every option is also an environment variable ``SWITCHYARD_WORKER_<FIELD>`` (e.g.
``SWITCHYARD_WORKER_MAX_PROCESSES=8``); a command-line flag wins over the environment. (The
environment is read here in a dozen lines rather than with pydantic-settings, whose import alone
would double the worker's boot time.)
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._autoscale import ScalePolicy

__all__ = ["ENV_PREFIX", "FLAGS", "WorkerSettings"]

ENV_PREFIX: Final = "SWITCHYARD_WORKER_"

_QUEUE_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:"
)


def _default_max() -> int:
    return max(2, os.cpu_count() or 1)


class WorkerSettings(BaseModel):
    """Everything ``switchyard-worker`` can be told; defaults need no configuring."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    queues: tuple[str, ...] = Field(
        default=(), description="queues to serve; empty means every queue the registry routes to"
    )
    min_processes: int = Field(default=1, ge=1, le=256, description="smallest pool size")
    max_processes: int = Field(
        default_factory=_default_max, ge=1, le=256, description="largest pool size"
    )
    max_jobs: int | None = Field(
        default=None, ge=1, description="recycle a process after this many jobs (none: never)"
    )
    grace: float = Field(
        default=30.0, ge=0, description="seconds in-flight jobs get to finish on SIGTERM/SIGINT"
    )
    health_port: int = Field(default=0, ge=0, le=65535, description="0 turns health off")
    health_host: str = Field(default="127.0.0.1", min_length=1)
    redis_url: str | None = Field(default=None, description="default: switchyard_rq.redis_url()")
    manifest: Path | None = Field(default=None, description="default: the project's config")
    scale_interval: float = Field(default=1.0, gt=0, le=60, description="seconds per tick")
    scale_backlog: int = Field(default=20, ge=1, description="waiting jobs per process: busy")
    scale_max_wait: float = Field(default=1.0, gt=0, description="oldest job age (s): busy")
    scale_up_ticks: int = Field(default=2, ge=1)
    scale_down_ticks: int = Field(default=30, ge=1)
    recover_interval: float = Field(default=5.0, gt=0, description="orphan sweep period (s)")
    metrics: bool = Field(default=True, description="per-job metrics (/metrics, switchyard top)")
    log_format: Literal["text", "json"] = Field(default="text", description="text or json lines")
    job_log: Literal["all", "failures", "off"] = Field(
        default="all", description="which job outcomes get a log line"
    )
    debug: bool = False

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
    ) -> WorkerSettings:
        """Settings from ``SWITCHYARD_WORKER_*`` variables, then ``overrides`` (the flags).

        Raises ValueError for a ``SWITCHYARD_WORKER_*`` variable that names no setting (a typo
        would otherwise be ignored), and pydantic's ValidationError for bad values.
        """
        env = os.environ if environ is None else environ
        known = {ENV_PREFIX + name.upper() for name in cls.model_fields}
        for key in env:
            if key.startswith(ENV_PREFIX) and key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ValueError(f"unknown setting {key}{hint}")
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper(), "")
            if raw.strip():
                values[name] = raw.strip()
        values.update(overrides or {})
        return cls.model_validate(values)

    @field_validator("queues", mode="before")
    @classmethod
    def _split_queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("queues")
    @classmethod
    def _check_queues(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not set(name) <= _QUEUE_CHARS:
                raise ValueError(f"bad queue name {name!r}: use letters, digits, _ - . :")
        return tuple(dict.fromkeys(value))

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> WorkerSettings:
        if self.max_processes < self.min_processes:
            raise ValueError(
                f"--max ({self.max_processes}) is smaller than --min ({self.min_processes})"
            )
        return self

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
    "log_format": "--log-format",
    "job_log": "--job-log",
    "debug": "--debug",
}
