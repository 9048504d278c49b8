"""The switchyard configuration as this process sees it, read once per cwd and environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from switchyard import Config, load_config

__all__ = ["current_config"]


def current_config() -> Config:
    """``switchyard.load_config()`` from the cwd, cached until the cwd or a SWITCHYARD_* changes."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("SWITCHYARD_")))
    return _load(os.getcwd(), env)


@lru_cache(maxsize=8)
def _load(cwd: str, env: tuple[tuple[str, str], ...]) -> Config:
    del env  # part of the cache key only
    return load_config(Path(cwd))


def clear_config_cache() -> None:
    _load.cache_clear()
