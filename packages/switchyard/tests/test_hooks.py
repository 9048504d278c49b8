from __future__ import annotations

import logging

import pytest
import switchyard
from pydantic import BaseModel
from switchyard import (
    HandlerError,
    InvalidInputError,
    InvalidOutputError,
    PluginLoadError,
    PluginValidationError,
    Registry,
    action,
    call_action,
    default_registry,
    hookimpl,
)
from switchyard.testing import make_registry, run

EVENTS: list[str] = []


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int


@action("hooks.ok")
def ok(data: In) -> Out:
    EVENTS.append("handler")
    return Out(n=data.n)


@action("hooks.boom")
def boom(data: In) -> Out:
    EVENTS.append("handler")
    raise KeyError("nope")


@action("hooks.bad_output")
def bad_output(data: In) -> Out:
    EVENTS.append("handler")
    return {"n": "x"}  # type: ignore[return-value]


class Recorder:
    @hookimpl
    def switchyard_before_call(self, action, context, data):
        EVENTS.append(f"before:{action.name}:{type(data).__name__}:{context.attempt}")

    @hookimpl
    def switchyard_after_call(self, action, context, result):
        EVENTS.append(f"after:{action.name}:{result.n}")

    @hookimpl
    def switchyard_on_error(self, action, context, error):
        EVENTS.append(f"error:{action.name}:{type(error).__name__}")


@pytest.fixture(autouse=True)
def _clear_events():
    EVENTS.clear()


REG = make_registry(ok, boom, bad_output, hooks=(Recorder(),))


def test_hooks_wrap_the_handler_in_order():
    call_action("hooks.ok", {"n": 4}, registry=REG)
    assert EVENTS == ["before:hooks.ok:In:1", "handler", "after:hooks.ok:4"]


@pytest.mark.parametrize(
    ("name", "data", "error", "events"),
    [
        ("hooks.ok", {"n": "x"}, InvalidInputError, ["error:hooks.ok:InvalidInputError"]),
        (
            "hooks.boom",
            {"n": 1},
            HandlerError,
            ["before:hooks.boom:In:1", "handler", "error:hooks.boom:HandlerError"],
        ),
        (
            "hooks.bad_output",
            {"n": 1},
            InvalidOutputError,
            [
                "before:hooks.bad_output:In:1",
                "handler",
                "error:hooks.bad_output:InvalidOutputError",
            ],
        ),
    ],
)
def test_on_error_runs_for_every_failure_after_resolve(name, data, error, events):
    with pytest.raises(error):
        call_action(name, data, registry=REG)
    assert events == EVENTS


def test_async_path_calls_the_same_hooks():
    import asyncio

    asyncio.run(switchyard.acall_action("hooks.ok", {"n": 2}, registry=REG))
    assert EVENTS == ["before:hooks.ok:In:1", "handler", "after:hooks.ok:2"]


def test_a_before_hook_can_refuse_a_call():
    class Gate:
        @hookimpl
        def switchyard_before_call(self, action, context, data):
            raise PermissionError("closed")

    with pytest.raises(PermissionError):
        run(ok, {"n": 1}, registry=make_registry(ok, hooks=(Gate(),)))
    assert EVENTS == []


def test_a_hook_with_a_wrong_signature_is_rejected_naming_it():
    class Wrong:
        @hookimpl
        def switchyard_before_call(self, action, context, payload):
            pass

    with pytest.raises(PluginValidationError, match="payload"):
        Registry.from_actions(ok).add_hooks(Wrong(), name="wrong")


def test_hook_plugins_from_entry_points_load_with_the_default_registry(plugins, caplog):
    plugins.add(
        "sytest-math",
        actions={"math.add": "sytest_math:add"},
        modules={"sytest_math": plugins.source("math")},
    )
    hook_module = """
from switchyard import hookimpl

SEEN = []


@hookimpl
def switchyard_registry_ready(registry):
    SEEN.append(("ready", "math.add" in registry))


@hookimpl
def switchyard_after_call(action, context, result):
    SEEN.append(("after", action.name, result.total))
"""
    plugins.add(
        "sytest-hooks",
        hooks={"sytest_recorder": "sytest_hooks", "sytest_broken": "sytest_hooks_broken:plugin"},
        modules={"sytest_hooks": hook_module, "sytest_hooks_broken": "raise RuntimeError('x')\n"},
    )
    with caplog.at_level(logging.WARNING, logger="switchyard"):
        registry = default_registry()
    import sytest_hooks  # type: ignore[import-not-found]

    assert sytest_hooks.SEEN == [("ready", True)]
    call_action("math.add", {"a": 1, "b": 2})
    assert sytest_hooks.SEEN[-1] == ("after", "math.add", 3)
    broken = [
        p
        for p in registry.problems()
        if isinstance(p, PluginLoadError) and p.distribution == "sytest-hooks"
    ]
    assert [(p.kind, p.action, p.distribution) for p in broken] == [
        ("hook", "sytest_broken", "sytest-hooks")
    ]
    assert "cannot load hook sytest_broken from sytest-hooks" in caplog.text
