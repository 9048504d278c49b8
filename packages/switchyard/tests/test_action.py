from __future__ import annotations

import pytest
import switchyard
from pydantic import BaseModel
from switchyard import (
    Action,
    ActionDefinitionError,
    Context,
    InvalidInputError,
    Rate,
    action,
    define,
)


class In(BaseModel):
    text: str


class Out(BaseModel):
    length: int


class Other(BaseModel):
    text: str


def length(data: In) -> Out:
    return Out(length=len(data.text))


def test_decorator_returns_a_frozen_action_with_inferred_models():
    @action("text.length", queue="fast", retries=2, backoff=0.5, timeout=3, version="2")
    def handler(data: In) -> Out:
        """Count characters.

        More text that is not the description.
        """
        return Out(length=len(data.text))

    assert isinstance(handler, Action)
    assert handler.input_model is In
    assert handler.output_model is Out
    assert handler.description == "Count characters."
    policy = handler.policy
    assert (policy.queue, policy.retries, policy.backoff, policy.timeout) == ("fast", 2, 0.5, 3.0)
    assert handler.version == "2"
    assert policy.idempotent is True
    assert handler.is_async is False
    assert handler.wants_context is False
    with pytest.raises(AttributeError, match="frozen"):
        handler.name = "text.other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del handler.policy  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        policy.retries = 5  # type: ignore[misc]


def test_action_pickles_and_copies():
    import copy
    import pickle

    built = define("text.length").queue("fast").handler(length).build()
    assert copy.deepcopy(built) is built
    again = pickle.loads(pickle.dumps(built))
    assert (again.name, again.policy.queue, again.input_model, again.handler) == (
        "text.length",
        "fast",
        In,
        length,
    )
    with pytest.raises(AttributeError):
        again.policy = again.policy  # type: ignore[misc]


def test_context_parameter_and_async_are_detected():
    @action("text.slow")
    async def slow(data: In, ctx: Context) -> Out:
        return Out(length=ctx.attempt)

    assert slow.is_async
    assert slow.wants_context


def test_builder_is_immutable_and_builds_a_frozen_action():
    base = define("text.length").description("Count.").handler(length)
    fast = base.queue("fast").retries(3, backoff=2.0).timeout(5.0).version("7").idempotent(False)
    slow = base.queue("slow")
    assert base is not fast
    a, b, c = base.build(), fast.build(), slow.build()
    assert a.policy.queue is None
    p = b.policy
    assert (p.queue, p.retries, p.backoff, p.timeout, b.version, p.idempotent) == (
        "fast",
        3,
        2.0,
        5.0,
        "7",
        False,
    )
    assert c.policy.queue == "slow"
    assert base.retries(1).build().policy.backoff == 1.0
    limited = base.options(concurrency=3, rate="10/s", priority="high").build().policy
    assert (limited.concurrency, limited.rate, limited.priority) == (3, Rate(10, 1.0), "high")
    with pytest.raises(AttributeError):
        base._options = {}  # type: ignore[misc]


def test_builder_explicit_models_override_hints():
    def untyped(data, ctx: Context):  # type: ignore[no-untyped-def]
        return {"length": 1}

    built = define("text.untyped").input(In).output(Out).handler(untyped).build()
    assert built.input_model is In
    assert built.wants_context


@pytest.mark.parametrize(
    "name",
    ["Auth.hash", "auth", "auth.", ".hash", "auth.hash.more", "auth.Hash", "1a.b", "a-b.c", 3],
)
def test_invalid_names_are_rejected_at_definition_time(name):
    with pytest.raises(ActionDefinitionError, match="invalid action name"):
        action(name)  # type: ignore[arg-type]
    with pytest.raises(ActionDefinitionError, match="invalid action name"):
        define(name)  # type: ignore[arg-type]


def test_models_must_be_pydantic_models():
    def bad_in(data: dict) -> Out:  # type: ignore[type-arg]
        return Out(length=0)

    def no_return(data: In):  # type: ignore[no-untyped-def]
        return None

    def no_params() -> Out:
        return Out(length=0)

    def extra_required(data: In, other: int) -> Out:
        return Out(length=other)

    with pytest.raises(ActionDefinitionError, match="input model must be a pydantic BaseModel"):
        action("text.bad")(bad_in)
    with pytest.raises(ActionDefinitionError, match="return type"):
        action("text.bad")(no_return)
    with pytest.raises(ActionDefinitionError, match="first positional parameter"):
        action("text.bad")(no_params)
    with pytest.raises(ActionDefinitionError, match="'other' has no default"):
        action("text.bad")(extra_required)
    with pytest.raises(ActionDefinitionError, match="output model must be"):
        define("text.bad").output(int).handler(length).build()  # type: ignore[arg-type]
    with pytest.raises(ActionDefinitionError, match="no handler"):
        define("text.bad").build()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be an integer >= 0"),
        ({"retries": True}, "retries must be"),
        ({"backoff": -0.5}, "backoff must be"),
        ({"timeout": 0}, "timeout must be"),
        ({"queue": ""}, "queue must be a non-empty string"),
        ({"version": ""}, "version must be"),
        ({"idempotent": "yes"}, "idempotent must be"),
        ({"description": 5}, "description must be a string"),
        ({"retry": 3}, "unknown option 'retry' \\(did you mean 'retries'\\?\\)"),
        ({"concurrency": 0}, "concurrency must be an integer >= 1"),
        ({"rate": "fast"}, "rate must be '<count>/<period>'"),
        ({"rate": "0/s"}, "rate"),
        ({"priority": "urgent"}, "priority must be 'high', 'normal' or 'low'"),
        ({"breaker": "yes"}, "breaker must be True, a failure count"),
        ({"concurrency_key": "text"}, "concurrency_key needs concurrency"),
        ({"concurrency": 2, "concurrency_key": "user"}, "no field 'user'"),
        ({"rate": "5/s", "rate_key": "text.x"}, "rate_key"),
        ({"io_bound": 1}, "io_bound must be True or False"),
    ],
)
def test_bad_options_name_the_action(options, message):
    with pytest.raises(ActionDefinitionError, match=message) as caught:
        action("text.length", **options)(length)
    assert caught.value.action == "text.length"
    assert "text.length" in str(caught.value)


def test_validate_input_accepts_dict_json_and_model_with_dotted_paths():
    class Item(BaseModel):
        price: float

    class Order(BaseModel):
        items: list[Item]

    def total(data: Order) -> Out:
        return Out(length=len(data.items))

    order = define("shop.total").handler(total).build()
    assert order.validate_input({"items": [{"price": 1}]}) == Order(items=[Item(price=1)])
    assert order.validate_input('{"items": []}') == Order(items=[])
    assert order.validate_input(b'{"items": []}') == Order(items=[])
    model = Order(items=[])
    assert order.validate_input(model) is model
    with pytest.raises(InvalidInputError) as caught:
        order.validate_input({"items": [{"price": 1}, {"price": "cheap"}]})
    error = caught.value
    assert error.errors[0].loc == "items.1.price"
    assert error.errors[0].type == "float_parsing"
    assert str(error).startswith("invalid input for shop.total: items.1.price: ")
    assert "\n" not in str(error)
    with pytest.raises(InvalidInputError, match="Invalid JSON"):
        order.validate_input("{not json")
    with pytest.raises(InvalidInputError, match="expected Order, got Other"):
        order.validate_input(Other(text="x"))
    with pytest.raises(InvalidInputError, match="expected a JSON object"):
        order.validate_input(42)


def test_unresolvable_annotations_say_what_to_do():
    def handler(data: Missing) -> Out:  # type: ignore[name-defined]  # noqa: F821
        return Out(length=0)

    with pytest.raises(
        ActionDefinitionError, match="cannot resolve the input annotation 'Missing'"
    ):
        action("text.missing")(handler)
    assert action("text.missing", input=In)(handler).input_model is In


def test_schemas():
    built = define("text.length").handler(length).build()
    assert built.input_schema()["properties"]["text"]["type"] == "string"
    assert built.output_schema()["title"] == "Out"


def test_import_switchyard_is_light():
    import subprocess
    import sys

    code = (
        "import sys, switchyard\n"
        "heavy = ['pydantic', 'pluggy', 'importlib.metadata', 'asyncio', 'argparse', 'rq',"
        " 'redis', 'rich', 'switchyard._cli', 'tomllib']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert switchyard.Context is Context
