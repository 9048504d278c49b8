"""The in-process call path: resolve -> validate input -> hooks -> handler -> validate output.

``run_action``/``arun_action`` run an already resolved Action (what a transport's dispatcher
uses); ``call_action``/``acall_action`` resolve a name in a registry first. The async variants
await async handlers and run sync handlers inline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from ._errors import HandlerError, SwitchyardError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._action import Action
    from ._context import Context
    from ._hooks import Hooks
    from ._registry import Registry

__all__ = ["acall_action", "arun_action", "call_action", "run_action"]


def _prepare(
    action: Action, context: Context | None, hooks: Hooks | None
) -> tuple[Context | None, Hooks]:
    """The hooks to run, and the context (None only when no hook and no handler needs one:
    creating a Context imports logging, which a bare call does not need)."""
    if hooks is None:
        from ._default import default_registry

        hooks = default_registry().hooks
    if context is None and (hooks.active or action.wants_context):
        from ._context import new_context

        context = new_context(action.name)
    return context, hooks


def _enter(
    action: Action, data: Any, context: Context | None, hooks: Hooks
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Validate the input, run the before-call hooks; the handler's arguments."""
    data_model = action.validate_input(data)
    if context is not None:
        hooks.before_call(action, context, data_model)
    return action.call_args(data_model, context)


def _leave(action: Action, result: Any, context: Context | None, hooks: Hooks) -> BaseModel:
    """Validate the handler's result, run the after-call hooks; the output model."""
    output = action.validate_output(result)
    if context is not None:
        hooks.after_call(action, context, output)
    return output


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _check_no_running_loop(action: Action) -> None:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"call_action cannot run the async action {action.name} inside a running event loop; "
        "use `await acall_action(...)` there"
    )


def _run_awaitable(awaitable: Awaitable[Any]) -> Any:
    import asyncio

    coroutine = awaitable if isinstance(awaitable, Coroutine) else _wait(awaitable)
    return asyncio.run(coroutine)


def _handle(action: Action, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The handler's result; whatever it raises as a HandlerError naming the action."""
    try:
        result = action.handler(*args, **kwargs)
        if isinstance(result, Awaitable):
            result = _run_awaitable(result)
    except Exception as error:
        raise HandlerError(action.name, error) from error
    return result


async def _ahandle(action: Action, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        result = action.handler(*args, **kwargs)
        if isinstance(result, Awaitable):
            result = await result
    except Exception as error:
        raise HandlerError(action.name, error) from error
    return result


def run_action(
    action: Action,
    data: Any,
    *,
    context: Context | None = None,
    hooks: Hooks | None = None,
) -> BaseModel:
    """Run a resolved action through the whole pipeline and return its output model.

    ``hooks`` defaults to the default registry's hooks; ``context`` to a fresh first attempt.
    Async handlers run with ``asyncio.run`` (not allowed inside a running loop: use
    :func:`arun_action` there).
    """
    if action.is_async:
        _check_no_running_loop(action)
    context, hooks = _prepare(action, context, hooks)
    try:
        args, kwargs = _enter(action, data, context, hooks)
        if action.policy.cache is None:
            result = _handle(action, args, kwargs)
        else:
            from ._cache import cached

            result = cached(action, args[0], lambda: _handle(action, args, kwargs))
        return _leave(action, result, context, hooks)
    except SwitchyardError as error:
        if context is not None:
            hooks.on_error(action, context, error)
        raise


async def arun_action(
    action: Action,
    data: Any,
    *,
    context: Context | None = None,
    hooks: Hooks | None = None,
) -> BaseModel:
    """Like :func:`run_action`, for async callers: awaits async handlers, runs sync ones inline."""
    context, hooks = _prepare(action, context, hooks)
    try:
        args, kwargs = _enter(action, data, context, hooks)
        if action.policy.cache is None:
            result = await _ahandle(action, args, kwargs)
        else:
            from ._cache import acached

            result = await acached(action, args[0], lambda: _ahandle(action, args, kwargs))
        return _leave(action, result, context, hooks)
    except SwitchyardError as error:
        if context is not None:
            hooks.on_error(action, context, error)
        raise


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from ._default import default_registry

    return default_registry()


def call_action(
    name: str,
    data: Any,
    *,
    registry: Registry | None = None,
    context: Context | None = None,
) -> BaseModel:
    """Call the action ``name`` in process with ``data`` (a dict, JSON text or the input model).

    Returns the output model. Raises UnknownActionError, a plugin error, InvalidInputError,
    HandlerError or InvalidOutputError, each naming the action.
    """
    reg = _registry(registry)
    return run_action(reg.resolve(name), data, context=context, hooks=reg.hooks)


async def acall_action(
    name: str,
    data: Any,
    *,
    registry: Registry | None = None,
    context: Context | None = None,
) -> BaseModel:
    """The async form of :func:`call_action`."""
    reg = _registry(registry)
    return await arun_action(reg.resolve(name), data, context=context, hooks=reg.hooks)
