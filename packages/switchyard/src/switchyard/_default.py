"""The process-wide default registry."""

from __future__ import annotations

import _thread
import os
from typing import TYPE_CHECKING

from ._errors import ManifestError
from ._registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["build_registry", "default_registry", "set_default_registry"]

_lock = _thread.RLock()
_default: Registry | None = None


def build_registry(manifest: str | Path | None, *, load_hooks: bool = True) -> Registry:
    """A registry as default_registry() builds it (``load_hooks=False``: without hook plugins)."""
    registry: Registry | None = None
    problem: ManifestError | None = None
    if manifest is not None:
        try:
            registry = Registry.from_manifest(manifest)
        except ManifestError as error:
            import logging

            logging.getLogger("switchyard").warning(
                "%s; using the installed entry points instead", error
            )
            problem = error
    if registry is None:
        registry = Registry.from_entry_points()
        if problem is not None:
            registry.add_problem(problem)
    if load_hooks:
        registry.load_hook_plugins()
        registry.hooks.registry_ready(registry)
    return registry


def default_registry() -> Registry:
    """The process's registry, built on first use.

    From the manifest named by ``$SWITCHYARD_MANIFEST`` (or the config's ``manifest``) when it
    is set and fresh; otherwise, and with a warning on the ``switchyard`` logger when the
    manifest is stale or unreadable, from the installed entry points. Hook plugins are loaded
    and ``switchyard_registry_ready`` is called once.
    """
    registry = _default
    if registry is not None:
        return registry
    with _lock:
        if _default is None:
            _set(build_registry(manifest_location()))
        assert _default is not None
        return _default


def manifest_location() -> str | Path | None:
    # The environment first: with $SWITCHYARD_MANIFEST set, the config file is not read.
    raw = os.environ.get("SWITCHYARD_MANIFEST", "").strip()
    if raw:
        return os.path.abspath(raw)
    from ._settings import read_settings

    manifest: Path | None = read_settings()["manifest"]
    return manifest


def _set(registry: Registry | None) -> None:
    global _default
    _default = registry


def set_default_registry(registry: Registry | None) -> None:
    """Replace the default registry (None: build it again on next use)."""
    with _lock:
        _set(registry)
