"""The project's switchyard configuration as a frozen pydantic model."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ._settings import read_settings

__all__ = ["Config", "load_config"]


class Config(BaseModel):
    """``[tool.switchyard]`` of the project, overridden by ``SWITCHYARD_*`` variables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path | None = None
    default_queue: str = "default"
    routing: tuple[tuple[str, str], ...] = ()
    redis_url: str | None = None
    manifest: Path | None = None
    max_payload_bytes: int = 1_048_576

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
