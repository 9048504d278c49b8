"""Helpers for testing actions without entry points, a manifest or a transport.

>>> reg = make_registry(hash_password)
>>> out = run(hash_password, {"password": "correct horse"})
>>> with use_registry(reg):
...     call_action("auth.hash_password", {"password": "correct horse"})
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._call import arun_action, run_action
from ._default import set_default_registry
from ._registry import Registry

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic import BaseModel

    from ._action import Action
    from ._cache import ResultCache
    from ._context import Context

__all__ = ["arun", "make_registry", "run", "use_cache", "use_registry"]


def make_registry(*actions: Action, hooks: tuple[object, ...] = ()) -> Registry:
    """A registry of in-memory actions, with ``hooks`` (hook plugin objects) registered."""
    registry = Registry.from_actions(*actions)
    for plugin in hooks:
        registry.add_hooks(plugin)
    return registry


def run(
    action: Action,
    data: Any,
    *,
    context: Context | None = None,
    registry: Registry | None = None,
) -> BaseModel:
    """Run ``action`` through the full pipeline, with the hooks of ``registry`` (default: none)."""
    hooks = (registry if registry is not None else make_registry(action)).hooks
    return run_action(action, data, context=context, hooks=hooks)


async def arun(
    action: Action,
    data: Any,
    *,
    context: Context | None = None,
    registry: Registry | None = None,
) -> BaseModel:
    """The async form of :func:`run`."""
    hooks = (registry if registry is not None else make_registry(action)).hooks
    return await arun_action(action, data, context=context, hooks=hooks)


@contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the default registry inside the ``with`` block."""
    from . import _default

    previous = _default._default
    set_default_registry(registry)
    try:
        yield registry
    finally:
        set_default_registry(previous)


@contextmanager
def use_cache(cache: ResultCache | None = None) -> Iterator[ResultCache]:
    """Keep cached results in ``cache`` (default: a new, empty MemoryCache) inside the block,
    so that no test sees another's results."""
    from . import _cache

    previous = _cache._chosen
    chosen = cache if cache is not None else _cache.MemoryCache()
    _cache.set_result_cache(chosen)
    try:
        yield chosen
    finally:
        _cache.set_result_cache(previous)
