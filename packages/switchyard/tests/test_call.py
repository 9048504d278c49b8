from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from switchyard import (
    Context,
    HandlerError,
    InvalidInputError,
    InvalidOutputError,
    Registry,
    UnknownActionError,
    acall_action,
    action,
    call_action,
    run_action,
)
from switchyard.testing import arun, make_registry, run, use_registry


class In(BaseModel):
    n: int


class Out(BaseModel):
    n: int


@action("calc.double")
def double(data: In) -> Out:
    return Out(n=data.n * 2)


@action("calc.adouble")
async def adouble(data: In, ctx: Context) -> Out:
    await asyncio.sleep(0)
    return Out(n=data.n * 2 + ctx.attempt - 1)


@action("calc.as_dict")
def as_dict(data: In) -> Out:
    return {"n": data.n}  # type: ignore[return-value]


@action("calc.bad_output")
def bad_output(data: In) -> Out:
    return {"n": "many"}  # type: ignore[return-value]


@action("calc.none_output")
def none_output(data: In) -> Out:
    return None  # type: ignore[return-value]


@action("calc.boom")
def boom(data: In) -> Out:
    raise ValueError(f"cannot handle {data.n}")


@action("calc.context")
def context(data: In, ctx: Context) -> Out:
    ctx.logger.info("attempt %s", ctx.attempt)
    return Out(n=ctx.attempt * 100 + len(ctx.call_id))


REG = make_registry(double, adouble, as_dict, bad_output, none_output, boom, context)


@pytest.mark.parametrize("data", [{"n": 2}, '{"n": 2}', b'{"n": 2}', In(n=2)])
def test_call_action_accepts_every_input_form(data):
    assert call_action("calc.double", data, registry=REG) == Out(n=4)


def test_default_registry_via_use_registry():
    with use_registry(REG):
        assert call_action("calc.double", {"n": 5}) == Out(n=10)


def test_async_handlers_run_in_call_and_acall():
    assert call_action("calc.adouble", {"n": 1}, registry=REG) == Out(n=2)
    assert asyncio.run(acall_action("calc.adouble", {"n": 1}, registry=REG)) == Out(n=2)
    assert asyncio.run(acall_action("calc.double", {"n": 3}, registry=REG)) == Out(n=6)
    assert asyncio.run(arun(adouble, {"n": 4})) == Out(n=8)


def test_sync_call_of_async_action_inside_a_loop_says_use_acall():
    async def inside():
        return call_action("calc.adouble", {"n": 1}, registry=REG)

    with pytest.raises(RuntimeError, match="acall_action"):
        asyncio.run(inside())


def test_context_is_injected_and_can_be_given():
    out = call_action("calc.context", {"n": 0}, registry=REG)
    assert out == Out(n=100 + 32)
    import logging

    given = Context(action="calc.context", call_id="abc", attempt=3, logger=logging.getLogger("t"))
    assert run(context, {"n": 0}, context=given) == Out(n=303)
    assert run(adouble, {"n": 1}, context=given) == Out(n=4)


def test_handler_may_return_a_dict():
    assert call_action("calc.as_dict", {"n": 7}, registry=REG) == Out(n=7)


@pytest.mark.parametrize(
    ("data", "loc"),
    [({"n": "x"}, "n"), ({}, "n"), ('{"n": ', ""), (Out(n=1), ""), ([1], "")],
)
def test_bad_input_names_action_and_field(data, loc):
    with pytest.raises(InvalidInputError) as caught:
        call_action("calc.double", data, registry=REG)
    assert caught.value.action == "calc.double"
    assert caught.value.errors[0].loc == loc
    assert str(caught.value).startswith("invalid input for calc.double: ")


def test_bad_input_async_path():
    with pytest.raises(InvalidInputError, match="n: Input should be a valid integer"):
        asyncio.run(acall_action("calc.adouble", {"n": "x"}, registry=REG))


def test_handler_error_chains_the_cause():
    with pytest.raises(HandlerError) as caught:
        call_action("calc.boom", {"n": 1}, registry=REG)
    error = caught.value
    assert str(error) == "action calc.boom failed: ValueError: cannot handle 1"
    assert error.error_type == "ValueError"
    assert isinstance(error.__cause__, ValueError)
    assert error.to_dict() == {
        "type": "HandlerError",
        "message": "action calc.boom failed: ValueError: cannot handle 1",
        "action": "calc.boom",
        "error_type": "ValueError",
    }


def test_invalid_output_is_a_plugin_bug():
    with pytest.raises(InvalidOutputError, match=r"bug in action calc.bad_output returned invalid"):
        call_action("calc.bad_output", {"n": 1}, registry=REG)
    with pytest.raises(InvalidOutputError, match="expected Out or a dict, got NoneType"):
        call_action("calc.none_output", {"n": 1}, registry=REG)


def test_invalid_output_names_the_distribution(plugins):
    extra = """
    @action("math.bad")
    def bad(data: AddIn) -> AddOut:
        return {"total": "lots"}
    """
    plugins.add(
        "sytest-math",
        actions={"math.bad": "sytest_math:bad"},
        modules={"sytest_math": plugins.source("math", extra=extra)},
    )
    with pytest.raises(InvalidOutputError) as caught:
        call_action("math.bad", {"a": 1, "b": 1}, registry=Registry.from_entry_points())
    assert caught.value.distribution == "sytest-math"
    assert str(caught.value).startswith("bug in plugin sytest-math: action math.bad returned")
    assert caught.value.errors[0].loc == "total"


def test_unknown_action_in_call():
    with pytest.raises(UnknownActionError, match=r"did you mean: calc\.double"):
        call_action("calc.doubel", {}, registry=REG)


def test_run_action_without_hooks_uses_the_default_registry_hooks():
    seen = []

    class Spy:
        from switchyard import hookimpl

        @hookimpl
        def switchyard_after_call(self, action, context, result):
            seen.append(result)

    reg = make_registry(double, hooks=(Spy(),))
    with use_registry(reg):
        run_action(double, {"n": 1})
    assert seen == [Out(n=2)]


def test_errors_pickle_and_serialize():
    import pickle

    with pytest.raises(InvalidInputError) as caught:
        call_action("calc.double", {"n": "x"}, registry=REG)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value)
    assert copy.errors == caught.value.errors
    data = caught.value.to_dict()
    assert data["type"] == "InvalidInputError"
    assert data["errors"][0]["loc"] == "n"


def test_a_bare_call_imports_neither_logging_nor_asyncio():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pydantic import BaseModel\n"
        "from switchyard import action, call_action\n"
        "from switchyard.testing import make_registry\n"
        "class In(BaseModel):\n    n: int\n"
        "class Out(BaseModel):\n    n: int\n"
        "@action('calc.inc')\n"
        "def inc(data: In) -> Out:\n    return Out(n=data.n + 1)\n"
        "assert call_action('calc.inc', {'n': 1}, registry=make_registry(inc)).n == 2\n"
        "print(sorted(m for m in ('logging', 'asyncio', 'pluggy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
