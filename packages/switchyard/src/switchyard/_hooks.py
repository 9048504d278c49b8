"""The hook relay a registry carries; creates its pluggy PluginManager on first registration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

if TYPE_CHECKING:
    import pluggy
    from pydantic import BaseModel

    from ._action import Action
    from ._context import Context
    from ._errors import SwitchyardError
    from ._registry import Registry

__all__ = ["Hooks"]


@final
class Hooks:
    """Calls the registered hook implementations; costs nothing while none is registered."""

    __slots__ = ("_manager",)

    def __init__(self) -> None:
        self._manager: pluggy.PluginManager | None = None

    @property
    def manager(self) -> pluggy.PluginManager:
        """The pluggy PluginManager (created, with switchyard's hook specs, on first use)."""
        if self._manager is None:
            import pluggy

            from . import _hookspecs

            manager = pluggy.PluginManager(_hookspecs.PROJECT)
            manager.add_hookspecs(_hookspecs)
            self._manager = manager
        return self._manager

    @property
    def active(self) -> bool:
        """Whether any hook plugin was registered (else calls skip hooks and their context)."""
        return self._manager is not None

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a hook plugin (a module or object with ``@hookimpl`` functions)."""
        self.manager.register(plugin, name)

    def plugins(self) -> list[tuple[str, object]]:
        """The registered hook plugins as (name, plugin) pairs."""
        if self._manager is None:
            return []
        return [(name or "", plugin) for name, plugin in self._manager.list_name_plugin()]

    def _call(self, hook: str, **kwargs: Any) -> None:
        if self._manager is not None:
            getattr(self._manager.hook, hook)(**kwargs)

    def before_call(self, action: Action, context: Context, data: BaseModel) -> None:
        self._call("switchyard_before_call", action=action, context=context, data=data)

    def after_call(self, action: Action, context: Context, result: BaseModel) -> None:
        self._call("switchyard_after_call", action=action, context=context, result=result)

    def on_error(self, action: Action, context: Context, error: SwitchyardError) -> None:
        self._call("switchyard_on_error", action=action, context=context, error=error)

    def registry_ready(self, registry: Registry) -> None:
        self._call("switchyard_registry_ready", registry=registry)
