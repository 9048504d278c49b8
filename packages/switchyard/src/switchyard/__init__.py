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
    ManifestError,
    PluginConflictError,
    PluginLoadError,
    PluginValidationError,
    StaleManifestError,
    SwitchyardError,
    UnknownActionError,
)
from ._hooks import Hooks
from ._policy import ActionPolicy, Breaker, Rate
from ._registry import ActionInfo, HookEntry, Registry

if TYPE_CHECKING:
    from ._config import Config, load_config
    from ._context import Context
    from ._hookspecs import hookimpl
    from ._manifest import write_manifest
    from ._resource import Resource, close_resources, resource

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ActionBuilder",
    "ActionDefinitionError",
    "ActionInfo",
    "ActionPolicy",
    "Breaker",
    "Config",
    "ConfigError",
    "Context",
    "FieldError",
    "HandlerError",
    "HookEntry",
    "Hooks",
    "InvalidInputError",
    "InvalidOutputError",
    "ManifestError",
    "PluginConflictError",
    "PluginLoadError",
    "PluginValidationError",
    "Rate",
    "Registry",
    "Resource",
    "StaleManifestError",
    "SwitchyardError",
    "UnknownActionError",
    "acall_action",
    "action",
    "arun_action",
    "call_action",
    "close_resources",
    "default_registry",
    "define",
    "hookimpl",
    "load_config",
    "resource",
    "run_action",
    "set_default_registry",
    "write_manifest",
]

_LAZY = {
    "Config": "_config",
    "load_config": "_config",
    "Context": "_context",
    "hookimpl": "_hookspecs",
    "write_manifest": "_manifest",
    "Resource": "_resource",
    "resource": "_resource",
    "close_resources": "_resource",
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
