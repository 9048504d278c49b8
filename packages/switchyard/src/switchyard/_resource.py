"""Per-process resources: a client or pool opened once per process, shared by its jobs, closed
at shutdown, without a module-level global in the plugin.

::

    @switchyard.resource
    def http() -> Iterator[httpx.Client]:
        with httpx.Client(timeout=5) as client:
            yield client          # opened on first use; the rest runs at shutdown

    @action("hooks.deliver")
    def deliver(data: In, ctx: Context) -> Out:
        response = ctx.resource(http).post(...)

An async generator factory gives an async resource, one per event loop (async clients are bound
to their loop): ``await ctx.aresource(pool)``. A forked process never inherits its parent's
resources: it opens its own. ``close_resources()`` (the worker calls it at shutdown, and at exit
in any process) runs every factory's code after its ``yield``, newest first.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any, Generic, NoReturn, TypeVar, final

__all__ = [
    "Resource",
    "aclose_resources",
    "aget_resource",
    "close_resources",
    "get_resource",
    "resource",
]

T = TypeVar("T")
log = logging.getLogger("switchyard.resource")


@final
class Resource(Generic[T]):
    """A per-process resource made by a generator (or async generator) ``factory``."""

    __slots__ = ("factory", "is_async", "name")

    def __init__(self, factory: Callable[[], Iterator[T]] | Callable[[], AsyncIterator[T]]) -> None:
        if inspect.isasyncgenfunction(factory):
            self.is_async = True
        elif inspect.isgeneratorfunction(factory):
            self.is_async = False
        else:
            raise TypeError(
                f"resource {getattr(factory, '__qualname__', factory)!r}: the factory must be a "
                "generator function that yields the resource once (sync or async)"
            )
        self.factory = factory
        self.name = f"{factory.__module__}.{factory.__qualname__}"

    def __repr__(self) -> str:
        return f"<resource {self.name}{' (async)' if self.is_async else ''}>"


def resource(factory: Callable[[], Iterator[T]] | Callable[[], AsyncIterator[T]]) -> Resource[T]:
    """Declare a per-process resource (see the module's docs)."""
    return Resource(factory)


class _Store:
    """The open resources of one process: sync ones, and async ones per event loop."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.sync: dict[Resource[Any], tuple[Any, Generator[Any, None, None]]] = {}
        self.by_loop: dict[
            asyncio.AbstractEventLoop, dict[Resource[Any], tuple[Any, AsyncGenerator[Any, None]]]
        ] = {}
        self.opening: dict[tuple[asyncio.AbstractEventLoop, Resource[Any]], asyncio.Lock] = {}


_store: _Store | None = None


def _current() -> _Store:
    global _store
    if _store is None or _store.pid != os.getpid():  # a forked child opens its own
        _store = _Store()
    return _store


def _first(resource: Resource[Any], gen: Any) -> NoReturn:
    raise RuntimeError(f"resource {resource.name}: its factory returned without yielding")


def get(res: Resource[T]) -> T:
    """The process's instance of sync resource ``res``, opened on first use (thread-safe)."""
    if res.is_async:
        raise TypeError(f"resource {res.name} is async: use `await ctx.aresource(...)`")
    store = _current()
    found = store.sync.get(res)
    if found is None:
        with store.lock:
            found = store.sync.get(res)
            if found is None:
                gen: Generator[Any, None, None] = res.factory()  # type: ignore[assignment]
                try:
                    value = next(gen)
                except StopIteration:
                    _first(res, gen)
                found = store.sync[res] = (value, gen)
    return found[0]  # type: ignore[no-any-return]


async def aget(res: Resource[T]) -> T:
    """The running loop's instance of resource ``res`` (sync resources are shared by all)."""
    if not res.is_async:
        return get(res)
    loop = asyncio.get_running_loop()
    store = _current()
    opened = store.by_loop.setdefault(loop, {})
    found = opened.get(res)
    if found is None:
        # one opener per loop: tasks that ask at once wait for it rather than each opening one
        lock = store.opening.setdefault((loop, res), asyncio.Lock())
        async with lock:
            found = opened.get(res)
            if found is None:
                gen = res.factory()
                try:
                    value = await gen.__anext__()  # type: ignore[union-attr]
                except StopAsyncIteration:
                    _first(res, gen)
                found = opened[res] = (value, gen)  # type: ignore[assignment]
        store.opening.pop((loop, res), None)
    assert found is not None
    return found[0]  # type: ignore[no-any-return]


get_resource = get
aget_resource = aget


async def aclose_resources() -> None:
    """Close the running loop's async resources, newest first (errors are logged)."""
    store = _current()
    opened = store.by_loop.pop(asyncio.get_running_loop(), {})
    for res, (_, gen) in reversed(list(opened.items())):
        try:
            await anext(gen, None)  # runs the code after its yield, as a context manager's exit
            await gen.aclose()
        except Exception:
            log.exception("closing resource %s failed", res.name)


def close_resources() -> None:
    """Close this process's sync resources, newest first (errors are logged). Async resources of
    loops that are not running are closed on them when they still can be."""
    store = _current()
    for loop in list(store.by_loop):
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(aclose_resources_on(loop))
        else:
            items = store.by_loop.pop(loop, {})
            if items:
                names = ", ".join(r.name for r in items)
                log.warning("async resources of a closed or running loop left open: %s", names)
    with store.lock:
        opened, store.sync = store.sync, {}
    for res, (_, gen) in reversed(list(opened.items())):
        try:
            next(gen, None)  # runs the code after its yield, as a context manager's exit
            gen.close()
        except Exception:
            log.exception("closing resource %s failed", res.name)


async def aclose_resources_on(loop: asyncio.AbstractEventLoop) -> None:
    del loop
    await aclose_resources()


atexit.register(close_resources)
