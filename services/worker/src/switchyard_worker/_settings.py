"""The worker's options: one pydantic settings model, fed by the command line and the environment.

Every option is also an environment variable ``SWITCHYARD_WORKER_<FIELD>`` (e.g.
``SWITCHYARD_WORKER_MAX_PROCESSES=8``); a command-line flag wins over the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from switchyard_worker._autoscale import ScalePolicy

__all__ = ["FLAGS", "WorkerSettings"]

_QUEUE_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:")


def _default_max() -> int:
    return max(2, os.cpu_count() or 1)


class WorkerSettings(BaseSettings):
    """Everything ``switchyard-worker`` can be told; defaults need no configuring."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_WORKER_", frozen=True, extra="forbid", validate_default=True
    )

    queues: Annotated[tuple[str, ...], NoDecode] = Field(
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
    debug: bool = False

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
    "debug": "--debug",
}
