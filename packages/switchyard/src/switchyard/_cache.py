"""Cached action results: an action whose policy says ``cache="5m"`` keeps its results, keyed by
the action's name, its version and its canonical input, and concurrent callers of one input run
the handler once (single flight).

The store is a :class:`ResultCache`: the Redis one of switchyard-rq (the extension ``cache``),
shared by every process, when a Redis is configured or the project's embedded Redis runs; else
a :class:`MemoryCache` of this process. ``set_result_cache`` picks one explicitly.

Single flight: the first caller claims the key (a lease that lapses if it dies) and runs the
handler; the others poll for the result, and take over if the claim lapses without one. A result
is stored only if none of its tags was invalidated while the handler ran (tag generations), so
an invalidation never loses to a slow handler that read the data before it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._action import Action

__all__ = [
    "MemoryCache",
    "ResultCache",
    "acached",
    "cache_key",
    "cached",
    "cached_result",
    "invalidate",
    "invalidate_cache",
    "result_cache",
    "set_result_cache",
]

T = TypeVar("T")
_POLL_FIRST: Final = 0.001
_POLL_MAX: Final = 0.05
_LEASE_DEFAULT: Final = 60.0


@runtime_checkable
class ResultCache(Protocol):
    """Where cached results live. Keys are ``action:version:digest``; values JSON text."""

    def get(self, key: str) -> str | None:
        """The stored result, or None."""

    def claim(self, key: str, lease: float) -> bool:
        """Take the right to compute ``key`` for ``lease`` seconds; False if another holds it."""

    def claimed(self, key: str) -> bool:
        """Whether someone holds the claim on ``key``."""

    def release(self, key: str) -> None:
        """Give the claim on ``key`` up."""

    def generation(self, tags: Sequence[str]) -> str:
        """A token of the tags' invalidation counts now (compared by :meth:`put`)."""

    def put(self, key: str, value: str, ttl: float, tags: Sequence[str], generation: str) -> bool:
        """Store ``value`` for ``ttl`` seconds under ``tags``, unless a tag was invalidated
        since ``generation`` was read; whether it was stored."""

    def invalidate(self, tags: Sequence[str]) -> int:
        """Drop every result stored under any of ``tags``; how many were dropped."""


class MemoryCache:
    """A :class:`ResultCache` in this process's memory (thread-safe): no Redis needed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, str]] = {}
        self._claims: dict[str, float] = {}
        self._tags: dict[str, set[str]] = {}
        self._generations: dict[str, int] = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._values.get(key)
            if found is None:
                return None
            if found[0] <= time.monotonic():
                del self._values[key]
                return None
            return found[1]

    def claim(self, key: str, lease: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._claims.get(key, 0.0) > now:
                return False
            self._claims[key] = now + lease
            return True

    def claimed(self, key: str) -> bool:
        with self._lock:
            return self._claims.get(key, 0.0) > time.monotonic()

    def release(self, key: str) -> None:
        with self._lock:
            self._claims.pop(key, None)

    def generation(self, tags: Sequence[str]) -> str:
        with self._lock:
            return ",".join(str(self._generations.get(tag, 0)) for tag in tags)

    def put(self, key: str, value: str, ttl: float, tags: Sequence[str], generation: str) -> bool:
        with self._lock:
            now_generation = ",".join(str(self._generations.get(tag, 0)) for tag in tags)
            if now_generation != generation:
                return False
            self._values[key] = (time.monotonic() + ttl, value)
            for tag in tags:
                self._tags.setdefault(tag, set()).add(key)
            return True

    def invalidate(self, tags: Sequence[str]) -> int:
        dropped = 0
        with self._lock:
            for tag in tags:
                self._generations[tag] = self._generations.get(tag, 0) + 1
                for key in self._tags.pop(tag, set()):
                    if self._values.pop(key, None) is not None:
                        dropped += 1
        return dropped


_chosen: ResultCache | None = None
_lock = threading.Lock()


def result_cache() -> ResultCache:
    """The process's result cache: the one set by :func:`set_result_cache`, else the ``cache``
    extension's (Redis) when it has one to offer, else a :class:`MemoryCache`."""
    global _chosen
    found = _chosen
    if found is None:
        with _lock:
            if _chosen is None:
                from ._extension import find_extension

                factory = find_extension("cache")
                made = factory() if factory is not None else None
                _chosen = made if made is not None else MemoryCache()
            found = _chosen
    return found


def set_result_cache(cache: ResultCache | None) -> None:
    """Use ``cache`` for this process's cached results; None: choose again on next use."""
    global _chosen
    with _lock:
        _chosen = cache


def invalidate(*tags: str) -> int:
    """Drop every cached result stored under any of ``tags``; how many were dropped."""
    if not tags:
        return 0
    return result_cache().invalidate(list(tags))


invalidate_cache = invalidate


def cached_result(action: Action, data: BaseModel) -> BaseModel | None:
    """The output model cached for ``data``, if the action caches and has one (a producer asks
    this before scheduling: a hit needs no job)."""
    if action.policy.cache is None:
        return None
    try:
        hit = result_cache().get(cache_key(action, data))
    except Exception as error:
        _unavailable(error)
        return None
    return None if hit is None else action.output_model.model_validate_json(hit)


def cache_key(action: Action, data: BaseModel) -> str:
    """``name:version:sha256`` of the canonical input (sorted keys, JSON mode, no spaces)."""
    import hashlib
    import json

    canonical = json.dumps(
        data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{action.name}:{action.version}:{digest}"


def _tags(action: Action, data: BaseModel) -> list[str]:
    policy = action.policy.cache
    assert policy is not None
    if not policy.tags:
        return []
    values = {name: getattr(data, name) for name in policy.fields()}
    return [tag.format_map(values) for tag in policy.tags]


def _plan(action: Action, data: BaseModel) -> tuple[ResultCache, str, list[str], float, float]:
    policy = action.policy.cache
    assert policy is not None
    lease = action.policy.timeout or _LEASE_DEFAULT
    return result_cache(), cache_key(action, data), _tags(action, data), policy.ttl, lease


def _unavailable(error: Exception) -> None:
    """A cache that is down costs the speed-up, never the call."""
    import logging

    logging.getLogger("switchyard.cache").warning(
        "result cache unavailable, running uncached: %s: %s", type(error).__name__, error
    )


def cached(action: Action, data: BaseModel, run: Callable[[], Any]) -> Any:
    """The action's cached result for ``data``, else ``run()``'s (stored), run once however many
    callers ask at the same time. Returns the output model (a hit) or what ``run`` returned."""
    store, key, tags, ttl, lease = _plan(action, data)
    delay = _POLL_FIRST
    try:
        hit = store.get(key)
    except Exception as error:
        _unavailable(error)
        return run()
    while True:
        if hit is not None:
            return action.output_model.model_validate_json(hit)
        generation = store.generation(tags)
        if store.claim(key, lease):
            try:
                result = run()
                output = action.validate_output(result)
                store.put(key, output.model_dump_json(), ttl, tags, generation)
                return output
            finally:
                store.release(key)
        while (hit := store.get(key)) is None and store.claimed(key):  # another one computes
            time.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)


async def acached(action: Action, data: BaseModel, run: Callable[[], Awaitable[Any]]) -> Any:
    """The async form of :func:`cached` (waits with ``asyncio.sleep``)."""
    import asyncio

    store, key, tags, ttl, lease = _plan(action, data)
    delay = _POLL_FIRST
    try:
        hit = store.get(key)
    except Exception as error:
        _unavailable(error)
        return await run()
    while True:
        if hit is not None:
            return action.output_model.model_validate_json(hit)
        generation = store.generation(tags)
        if store.claim(key, lease):
            try:
                result = await run()
                output = action.validate_output(result)
                store.put(key, output.model_dump_json(), ttl, tags, generation)
                return output
            finally:
                store.release(key)
        while (hit := store.get(key)) is None and store.claimed(key):
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
