"""The switchyard configuration as this process sees it, read once per cwd and environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Final

from switchyard import Config, load_config

__all__ = ["current_config"]


# The variables load_config reads (switchyard's settings); the cache is keyed on these alone, so
# a call costs four dict lookups, not a scan of the whole environment.
_READ: Final = (
    "SWITCHYARD_DEFAULT_QUEUE",
    "SWITCHYARD_REDIS_URL",
    "SWITCHYARD_MANIFEST",
    "SWITCHYARD_MAX_PAYLOAD_BYTES",
)


def current_config() -> Config:
    """``switchyard.load_config()`` from the cwd, cached until the cwd or one of the
    ``SWITCHYARD_*`` variables it reads changes."""
    get = os.environ.get
    return _load(os.getcwd(), tuple([get(name) for name in _READ]))


@lru_cache(maxsize=8)
def _load(cwd: str, env: tuple[str | None, ...]) -> Config:
    del env  # part of the cache key only
    return load_config(Path(cwd))


def clear_config_cache() -> None:
    _load.cache_clear()
