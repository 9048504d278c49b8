"""Cached action results: the cache option, keys (action, version, canonical input), single
flight, invalidation by tag, and both call paths."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from pydantic import BaseModel
from switchyard import (
    ActionDefinitionError,
    Cache,
    Context,
    MemoryCache,
    acall_action,
    action,
    call_action,
    invalidate_cache,
)
from switchyard.testing import make_registry, use_cache, use_registry


class In(BaseModel):
    user_id: int
    detail: dict[str, int] = {}


class Out(BaseModel):
    value: int


def counted(version: str = "1", *, delay: float = 0.0, **options):
    runs: list[int] = []

    @action("t.cached", version=version, cache={"ttl": "5m", "tags": ["user:{user_id}"]}, **options)
    def handler(data: In) -> Out:
        runs.append(data.user_id)
        time.sleep(delay)
        return Out(value=len(runs))

    return handler, runs


@pytest.fixture(autouse=True)
def memory():
    with use_cache() as cache:
        yield cache


def test_a_hit_skips_the_handler_and_the_input_is_canonical():
    handler, runs = counted()
    with use_registry(make_registry(handler)):
        first = call_action("t.cached", {"user_id": 1, "detail": {"a": 1, "b": 2}})
        again = call_action("t.cached", '{"detail": {"b": 2, "a": 1}, "user_id": 1}')
        other = call_action("t.cached", {"user_id": 2})
    assert first == again == Out(value=1)
    assert other == Out(value=2)
    assert runs == [1, 2]


def test_the_key_holds_the_action_version():
    old, old_runs = counted("1")
    new, new_runs = counted("2")
    with use_registry(make_registry(old)):
        call_action("t.cached", {"user_id": 1})
    with use_registry(make_registry(new)):
        assert call_action("t.cached", {"user_id": 1}) == Out(value=1)
    assert (old_runs, new_runs) == ([1], [1])


def test_invalidation_by_tag_from_an_action_and_from_code():
    handler, runs = counted()

    @action("t.change")
    def change(data: In, ctx: Context) -> Out:
        return Out(value=ctx.invalidate(f"user:{data.user_id}"))

    with use_registry(make_registry(handler, change)):
        call_action("t.cached", {"user_id": 1})
        call_action("t.cached", {"user_id": 2})
        assert call_action("t.change", {"user_id": 1}) == Out(value=1)
        call_action("t.cached", {"user_id": 1})
        call_action("t.cached", {"user_id": 2})
        assert invalidate_cache("user:2") == 1
        call_action("t.cached", {"user_id": 2})
    assert runs == [1, 2, 1, 2]


def test_concurrent_callers_of_one_input_run_the_handler_once():
    handler, runs = counted(delay=0.2)
    results: list[Out] = []
    with use_registry(make_registry(handler)):
        threads = [
            threading.Thread(target=lambda: results.append(call_action("t.cached", {"user_id": 7})))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert runs == [7]
    assert results == [Out(value=1)] * 8


def test_async_callers_share_one_run_too():
    runs: list[int] = []

    @action("t.acached", cache="5m")
    async def handler(data: In) -> Out:
        runs.append(data.user_id)
        await asyncio.sleep(0.1)
        return Out(value=data.user_id * 10)

    async def main() -> list[Out]:
        return await asyncio.gather(*(acall_action("t.acached", {"user_id": 3}) for _ in range(10)))

    with use_registry(make_registry(handler)):
        outs = asyncio.run(main())
    assert runs == [3]
    assert outs == [Out(value=30)] * 10


def test_a_result_computed_across_an_invalidation_is_not_stored():
    started, go_on = threading.Event(), threading.Event()
    runs: list[int] = []

    @action("t.slow", cache={"ttl": "5m", "tags": ["user:{user_id}"]})
    def slow(data: In) -> Out:
        runs.append(1)
        started.set()
        go_on.wait(5)
        return Out(value=len(runs))

    with use_registry(make_registry(slow)):
        worker = threading.Thread(target=call_action, args=("t.slow", {"user_id": 1}))
        worker.start()
        started.wait(5)
        invalidate_cache("user:1")  # the data changed while the handler was reading it
        go_on.set()
        worker.join()
        assert call_action("t.slow", {"user_id": 1}) == Out(value=2)
    assert len(runs) == 2


def test_a_failed_run_is_not_cached():
    calls: list[int] = []

    @action("t.flaky", cache="1m")
    def flaky(data: In) -> Out:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first time")
        return Out(value=len(calls))

    with use_registry(make_registry(flaky)):
        with pytest.raises(Exception, match="first time"):
            call_action("t.flaky", {"user_id": 1})
        assert call_action("t.flaky", {"user_id": 1}) == Out(value=2)


def test_the_option_is_checked_and_shown_in_the_policy():
    handler, _ = counted()
    assert handler.policy.cache == Cache(300, tags=("user:{user_id}",))
    assert handler.policy.to_json()["cache"] == {"ttl": 300.0, "tags": ["user:{user_id}"]}
    assert str(handler.policy.cache) == "5min, tags user:{user_id}"
    with pytest.raises(ActionDefinitionError, match="cache tag field 'tenant'"):

        @action("t.bad", cache={"ttl": "1m", "tags": ["tenant:{tenant}"]})
        def bad(data: In) -> Out:
            return Out(value=1)

    with pytest.raises(ActionDefinitionError, match="cache must be a duration"):

        @action("t.bad", cache="soon")
        def bad2(data: In) -> Out:
            return Out(value=1)


def test_an_unavailable_cache_costs_the_speed_up_not_the_call():
    class Down(MemoryCache):
        def get(self, key: str) -> str | None:
            raise ConnectionError("cache server gone")

    handler, runs = counted()
    with use_cache(Down()), use_registry(make_registry(handler)):
        call_action("t.cached", {"user_id": 1})
        call_action("t.cached", {"user_id": 1})
    assert runs == [1, 1]
