"""The lazy registry: action metadata up front, each plugin module imported on first resolve.

A registry knows every action's name, target (``module:attribute``) and distribution without
importing anything. ``resolve(name)`` imports the target once and caches the Action (or the
error: a broken plugin breaks only its own actions). Same-name registrations from two
distributions are recorded as conflicts when the registry is built and raised only when that
name is resolved.
"""

from __future__ import annotations

import _thread
import importlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Final, NamedTuple, final

from ._action import Action
from ._errors import (
    ActionDefinitionError,
    PluginConflictError,
    PluginLoadError,
    PluginValidationError,
    SwitchyardError,
    UnknownActionError,
)
from ._hooks import Hooks

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ACTIONS_GROUP", "HOOKS_GROUP", "ActionInfo", "HookEntry", "Registry"]

ACTIONS_GROUP: Final = "switchyard.actions"
HOOKS_GROUP: Final = "switchyard.hooks"


class ActionInfo(NamedTuple):
    """What is known about an action without importing it.

    ``queue`` and ``description`` are None unless known from a manifest or an in-memory action.
    """

    name: str
    target: str
    distribution: str | None
    dist_version: str | None
    queue: str | None = None
    description: str | None = None


class HookEntry(NamedTuple):
    """A hook plugin: entry-point name, target (``module`` or ``module:object``), distribution."""

    name: str
    target: str
    distribution: str | None


def scan_entry_points() -> tuple[list[ActionInfo], list[HookEntry]]:
    """Every installed ``switchyard.actions`` and ``switchyard.hooks`` entry point, unimported.

    Like ``importlib.metadata.entry_points()``, only the first distribution of a name on
    ``sys.path`` counts; see ``_metadata`` for why this does not use importlib.metadata.
    """
    from ._metadata import installed, read_entry_points, read_version

    actions: list[ActionInfo] = []
    hooks: list[HookEntry] = []
    for dist in installed():
        groups = read_entry_points(dist.path)
        if not groups:
            continue
        version = dist.version or read_version(dist.path)
        for name, value in groups.get(ACTIONS_GROUP, ()):
            actions.append(ActionInfo(name, value, dist.name, version))
        for name, value in groups.get(HOOKS_GROUP, ()):
            hooks.append(HookEntry(name, value, dist.name))
    return actions, hooks


def load_target(target: str) -> object:
    """Import ``module`` or ``module:attr.path`` and return the object."""
    module_name, _, attr = target.partition(":")
    obj: object = importlib.import_module(module_name.strip())
    for part in attr.strip().split(".") if attr.strip() else ():
        obj = getattr(obj, part)
    return obj


def _load_action(info: ActionInfo) -> Action:
    try:
        obj = load_target(info.target)
    except Exception as error:
        raise PluginLoadError(info.name, info.distribution, info.target, error) from error
    if not isinstance(obj, Action):
        kind = type(obj).__name__
        raise PluginValidationError(
            info.name,
            info.distribution,
            f"entry point {info.name!r} points to {info.target}, which is a {kind}, "
            "not a switchyard Action; define it with @action(...) or define(...).build()",
        )
    if obj.name != info.name:
        raise PluginValidationError(
            info.name,
            info.distribution,
            f"entry point {info.name!r} points to {info.target}, which is the action named "
            f"{obj.name!r}; the entry point's name and the action's name must be the same",
        )
    if info.distribution is not None and obj._distribution is None:
        object.__setattr__(obj, "_distribution", info.distribution)
    return obj


@final
class Registry:
    """The actions a process can call, resolved lazily. Build one with a ``from_*`` method."""

    __slots__ = (
        "_conflicts",
        "_failed",
        "_hook_entries",
        "_hooks_loaded",
        "_infos",
        "_loaded",
        "_lock",
        "_problems",
        "hooks",
        "source",
    )

    def __init__(
        self,
        infos: Iterable[ActionInfo],
        *,
        actions: Iterable[Action] = (),
        hook_entries: Iterable[HookEntry] = (),
        source: str = "in-memory",
    ) -> None:
        """Prefer the ``from_*`` constructors; this one records conflicts, imports nothing."""
        self._infos: dict[str, ActionInfo] = {}
        seen: dict[str, list[str]] = {}
        for info in infos:
            dists = seen.setdefault(info.name, [])
            dist = info.distribution or "<unknown>"
            if dist not in dists:
                dists.append(dist)
            self._infos.setdefault(info.name, info)
        self._conflicts = {name: tuple(d) for name, d in seen.items() if len(d) > 1}
        self._loaded: dict[str, Action] = {a.name: a for a in actions}
        self._failed: dict[str, SwitchyardError] = {}
        self._hook_entries = tuple(hook_entries)
        self._hooks_loaded = False
        self._problems: list[SwitchyardError] = []
        self._lock = _thread.RLock()
        self.hooks: Hooks = Hooks()
        self.source: str = source

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_actions(cls, *actions: Action) -> Registry:
        """A registry of in-memory actions (no entry points; what ``switchyard.testing`` uses)."""
        infos = []
        names: set[str] = set()
        for item in actions:
            if not isinstance(item, Action):
                raise ActionDefinitionError(
                    f"from_actions takes Action objects, got {type(item).__name__}"
                )
            if item.name in names:
                raise ActionDefinitionError(f"two actions are named {item.name}", action=item.name)
            names.add(item.name)
            handler = item.handler
            target = f"{handler.__module__}:{getattr(handler, '__qualname__', handler)}"
            infos.append(
                ActionInfo(item.name, target, None, None, item.policy.queue, item.description)
            )
        return cls(infos, actions=actions, source="in-memory")

    @classmethod
    def from_entry_points(cls) -> Registry:
        """Every installed ``switchyard.actions`` entry point; reads metadata, imports nothing."""
        actions, hooks = scan_entry_points()
        return cls(actions, hook_entries=hooks, source="entry points")

    @classmethod
    def from_manifest(cls, path: str | Path, *, check_fresh: bool = True) -> Registry:
        """The actions frozen in a manifest; no metadata scan.

        Raises ManifestError if it cannot be read, StaleManifestError if ``check_fresh`` and
        the installed ``switchyard.*`` entry points differ from those it was written for.
        """
        from ._manifest import read_manifest

        return read_manifest(path, check_fresh=check_fresh)

    # -- lookup -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every registered action name, sorted."""
        return sorted(self._infos)

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def __len__(self) -> int:
        return len(self._infos)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"<Registry {len(self)} actions from {self.source}>"

    def info(self, name: str) -> ActionInfo:
        """Metadata about ``name`` without importing it (for a conflict: the first found)."""
        try:
            return self._infos[name]
        except KeyError:
            raise self._unknown(name) from None

    def resolve(self, name: str) -> Action:
        """The Action called ``name``, importing its plugin module the first time."""
        with self._lock:
            found = self._loaded.get(name)
            if found is not None:
                return found
            failed = self._failed.get(name)
            if failed is not None:
                raise failed
            if name in self._conflicts:
                raise PluginConflictError(name, self._conflicts[name])
            info = self._infos.get(name)
            if info is None:
                raise self._unknown(name)
            try:
                loaded = _load_action(info)
            except SwitchyardError as error:
                self._failed[name] = error
                raise
            self._loaded[name] = loaded
            return loaded

    def _unknown(self, name: str) -> UnknownActionError:
        import difflib

        close = difflib.get_close_matches(str(name), list(self._infos), n=3, cutoff=0.6)
        return UnknownActionError(str(name), tuple(close))

    def problems(self) -> list[SwitchyardError]:
        """Problems found without importing actions: conflicts, a stale manifest, bad hooks."""
        found: list[SwitchyardError] = [
            PluginConflictError(name, dists) for name, dists in sorted(self._conflicts.items())
        ]
        return found + list(self._problems)

    def add_problem(self, problem: SwitchyardError) -> None:
        """Record a problem found while setting this registry up (shown by ``doctor``)."""
        self._problems.append(problem)

    # -- hooks --------------------------------------------------------------------------------

    def hook_entries(self) -> tuple[HookEntry, ...]:
        """The hook plugins this registry knows of (from entry points or its manifest)."""
        return self._hook_entries

    def add_hooks(self, plugin: object, name: str | None = None) -> None:
        """Register a hook plugin by hand (an object or module with ``@hookimpl`` functions)."""
        try:
            self.hooks.register(plugin, name)
        except Exception as error:
            label = str(name or getattr(plugin, "__name__", type(plugin).__name__))
            raise PluginValidationError(label, None, f"hook plugin {label}: {error}") from error

    def load_hook_plugins(self) -> None:
        """Import and register the hook plugins from entry points/manifest, once.

        A hook plugin that fails to load is logged and recorded in ``problems()``; it does not
        stop the others.
        """
        with self._lock:
            if self._hooks_loaded:
                return
            self._hooks_loaded = True
            for entry in self._hook_entries:
                problem: SwitchyardError
                try:
                    plugin = load_target(entry.target)
                except Exception as error:
                    problem = PluginLoadError(
                        entry.name, entry.distribution, entry.target, error, kind="hook"
                    )
                else:
                    try:
                        self.hooks.register(plugin, entry.name)
                        continue
                    except Exception as error:
                        problem = PluginValidationError(
                            entry.name,
                            entry.distribution,
                            f"hook plugin {entry.name} ({entry.target}): {error}",
                        )
                import logging

                logging.getLogger("switchyard").warning("%s", problem)
                self._problems.append(problem)
