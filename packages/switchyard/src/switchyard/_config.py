"""The project's switchyard configuration: a frozen value object (no pydantic).

``load_config`` runs on every start-up path (the CLI's listing, producers, the worker's boot), so
it stays free of pydantic: ``_settings`` validates the file and the environment by hand, and this
class only checks the types of values given to it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._settings import ScheduleTable, read_settings

if TYPE_CHECKING:
    from ._schedule import Schedule

_PARSED: dict[ScheduleTable, tuple[Schedule, ...]] = {}

__all__ = ["Config", "load_config"]


@dataclass(frozen=True, slots=True)
class Config:
    """``[tool.switchyard]`` of the project, overridden by ``SWITCHYARD_*`` variables."""

    root: Path | None = None
    default_queue: str = "default"
    routing: tuple[tuple[str, str], ...] = field(default=())
    redis_url: str | None = None
    manifest: Path | None = None
    max_payload_bytes: int = 1_048_576
    #: ``[tool.switchyard.schedules]`` as written; :attr:`schedules` reads it
    schedule_table: ScheduleTable | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("root", "manifest"):
            value: Any = getattr(self, name)
            if isinstance(value, str):
                set_(self, name, Path(value))
            elif value is not None and not isinstance(value, Path):
                raise TypeError(f"Config.{name} must be a path, got {value!r}")
        if not isinstance(self.default_queue, str) or not self.default_queue:
            raise TypeError(
                f"Config.default_queue must be a non-empty string, got {self.default_queue!r}"
            )
        rules = tuple(tuple(rule) for rule in self.routing)
        if not all(len(r) == 2 and all(isinstance(p, str) for p in r) for r in rules):
            raise TypeError(
                f"Config.routing must be (pattern, queue) string pairs, got {self.routing!r}"
            )
        set_(self, "routing", rules)
        size = self.max_payload_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise TypeError(f"Config.max_payload_bytes must be a positive integer, got {size!r}")

    @property
    def schedules(self) -> tuple[Schedule, ...]:
        """``[tool.switchyard.schedules]``, checked on first read (ConfigError naming the file
        and line of a bad entry); see ``switchyard.load_schedules`` for every schedule."""
        table = self.schedule_table
        if table is None:
            return ()
        parsed = _PARSED.get(table)
        if parsed is None:
            from ._schedule import read_schedules_table

            parsed = _PARSED[table] = read_schedules_table(table.path, table.table, table.text)
        return parsed

    def route(self, action_name: str, hint: str | None = None) -> str:
        """The queue for ``action_name``: first matching rule, else ``hint``, else the default."""
        from fnmatch import fnmatchcase

        for pattern, queue in self.routing:
            if fnmatchcase(action_name, pattern):
                return queue
        return hint or self.default_queue


def load_config(start: Path | None = None) -> Config:
    """Read the configuration of the project enclosing ``start`` (default: the current folder).

    Raises ConfigError naming the file and line for malformed TOML or a bad value.
    """
    return Config(**read_settings(start))
