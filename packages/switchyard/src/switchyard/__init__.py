"""Switchyard: typed actions published as entry-point plugins, loaded lazily, called anywhere.

Importing this package is cheap: it imports neither pydantic, pluggy, importlib.metadata nor
asyncio. ``Context``, ``Config``, ``load_config`` and ``hookimpl`` load their modules on first
access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._action import Action, ActionBuilder, action, define
from ._call import acall_action, arun_action, call_action, run_action
from ._default import default_registry, set_default_registry
from ._errors import (
    ActionDefinitionError,
    ConfigError,
    FieldError,
    HandlerError,
    InvalidInputError,
    InvalidOutputError,
    JobCancelledError,
    ManifestError,
    PluginConflictError,
    PluginLoadError,
    PluginValidationError,
    StaleManifestError,
    SwitchyardError,
    UnknownActionError,
)
from ._hooks import Hooks
from ._policy import ActionPolicy, Breaker, Cache, Rate
from ._registry import ActionInfo, HookEntry, Registry

if TYPE_CHECKING:
    from ._cache import (
        MemoryCache,
        ResultCache,
        cached_result,
        invalidate_cache,
        set_result_cache,
    )
    from ._config import Config, load_config
    from ._context import Context, JobControl
    from ._hookspecs import hookimpl
    from ._manifest import write_manifest
    from ._resource import Resource, aget_resource, close_resources, get_resource, resource
    from ._schedule import Schedule, load_schedules

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ActionBuilder",
    "ActionDefinitionError",
    "ActionInfo",
    "ActionPolicy",
    "Breaker",
    "Cache",
    "Config",
    "ConfigError",
    "Context",
    "FieldError",
    "HandlerError",
    "HookEntry",
    "Hooks",
    "InvalidInputError",
    "InvalidOutputError",
    "JobCancelledError",
    "JobControl",
    "ManifestError",
    "MemoryCache",
    "PluginConflictError",
    "PluginLoadError",
    "PluginValidationError",
    "Rate",
    "Registry",
    "Resource",
    "ResultCache",
    "Schedule",
    "StaleManifestError",
    "SwitchyardError",
    "UnknownActionError",
    "acall_action",
    "action",
    "aget_resource",
    "arun_action",
    "cached_result",
    "call_action",
    "close_resources",
    "default_registry",
    "define",
    "get_resource",
    "hookimpl",
    "invalidate_cache",
    "load_config",
    "load_schedules",
    "resource",
    "run_action",
    "set_default_registry",
    "set_result_cache",
    "write_manifest",
]

_LAZY = {
    "MemoryCache": "_cache",
    "ResultCache": "_cache",
    "cached_result": "_cache",
    "invalidate_cache": "_cache",
    "set_result_cache": "_cache",
    "Config": "_config",
    "load_config": "_config",
    "Context": "_context",
    "JobControl": "_context",
    "hookimpl": "_hookspecs",
    "write_manifest": "_manifest",
    "Resource": "_resource",
    "resource": "_resource",
    "close_resources": "_resource",
    "get_resource": "_resource",
    "aget_resource": "_resource",
    "Schedule": "_schedule",
    "load_schedules": "_schedule",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'switchyard' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"switchyard.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
