"""Boot: find the registry (manifest or metadata, never importing a plugin), the queues, Redis.

The supervisor and every child process run :func:`load_registry` with the same inputs, so they
agree on which actions exist; only a child imports a plugin, when that plugin's first job runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import final

from switchyard import Config, Registry, StaleManifestError
from switchyard_rq import route

__all__ = ["Boot", "load_registry", "served_queues"]

log = logging.getLogger("switchyard_worker")


@final
@dataclass(frozen=True, slots=True)
class Boot:
    """What the supervisor found at start, passed on to its children."""

    registry: Registry
    #: "manifest <path>", or "metadata" when built from installed entry points
    source: str
    #: the manifest the children should read, or None for metadata
    manifest: Path | None
    config: Config


def load_registry(config: Config, manifest: Path | None) -> Boot:
    """Build the registry from ``manifest`` (or the config's), falling back to metadata.

    A stale manifest (plugins installed or removed since it was written) is logged and ignored,
    so that a worker never serves an out-of-date action table; a missing or unreadable manifest
    that was asked for explicitly raises :class:`switchyard.ManifestError`.
    """
    path = manifest or config.manifest
    if path is not None:
        if config.root is not None and not path.is_absolute():
            path = config.root / path
        try:
            registry = Registry.from_manifest(path)
        except StaleManifestError as exc:
            log.warning("ignoring stale manifest %s (%s); reading plugin metadata", path, exc)
        else:
            return Boot(registry, f"manifest {path}", path.resolve(), config)
    return Boot(Registry.from_entry_points(), "metadata", None, config)


def served_queues(boot: Boot, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The queues to consume: ``requested`` if given, else every queue Switchyard routes to.

    That is the default queue, every queue a routing rule names, and every registered action's
    queue. An action's own ``queue=`` hint is known without importing its plugin only from a
    manifest; without one, route such actions with ``[tool.switchyard.routing]`` or ``--queues``.
    """
    if requested:
        return requested
    registry, config = boot.registry, boot.config
    queues = {route(name, registry.info(name).queue, config=config) for name in registry.names()}
    queues.update(queue for _, queue in config.routing)
    queues.add(config.default_queue)
    return tuple(sorted(queues))
