"""The hook specifications of switchyard (pluggy project name ``"switchyard"``).

Hook plugins implement these with ``@switchyard.hookimpl`` and register through the entry-point
group ``switchyard.hooks`` (or ``registry.add_hooks(obj)``). Imported only when the first hook
plugin is registered, so that a process without hooks never loads pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pluggy

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._action import Action
    from ._context import Context
    from ._errors import SwitchyardError
    from ._registry import Registry

PROJECT: Final = "switchyard"
hookspec: Final = pluggy.HookspecMarker(PROJECT)
hookimpl: Final = pluggy.HookimplMarker(PROJECT)


@hookspec
def switchyard_before_call(action: Action, context: Context, data: BaseModel) -> None:
    """Called with the validated input, before the handler runs. Raise to refuse the call."""


@hookspec
def switchyard_after_call(action: Action, context: Context, result: BaseModel) -> None:
    """Called with the validated output, after the handler returned."""


@hookspec
def switchyard_on_error(action: Action, context: Context, error: SwitchyardError) -> None:
    """Called with the error of a call that failed after the action was resolved."""


@hookspec
def switchyard_registry_ready(registry: Registry) -> None:
    """Called once the default registry is built and its hook plugins are registered."""
