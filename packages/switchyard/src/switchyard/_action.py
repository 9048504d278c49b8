"""Actions: the frozen :class:`Action`, the ``@action`` decorator and the ``define()`` builder.

pydantic, inspect and re are imported inside the functions that need them, so that
``import switchyard`` stays cheap; by the time an action is defined, the plugin module defining
it has imported pydantic anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn, final

from ._errors import ActionDefinitionError, FieldError, InvalidInputError, InvalidOutputError
from ._policy import ActionPolicy, build_policy

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

__all__ = ["NAME_PATTERN", "Action", "ActionBuilder", "action", "define", "validate_name"]


NAME_PATTERN: Final = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
_UNSET: Final[Any] = object()
_FIELDS: Final = (
    "name",
    "handler",
    "input_model",
    "output_model",
    "description",
    "version",
    "policy",
    "is_async",
    "wants_context",
)


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid action name, else raise ActionDefinitionError."""
    import re

    if not isinstance(name, str) or re.fullmatch(NAME_PATTERN, name) is None:
        raise ActionDefinitionError(
            f"invalid action name {name!r}: use '<module>.<verb_noun>' in lowercase letters, "
            "digits and underscores, e.g. 'auth.hash_password'",
            action=name if isinstance(name, str) else None,
        )
    return name


def _field_errors(error: ValidationError) -> tuple[FieldError, ...]:
    return tuple(
        FieldError(
            loc=".".join(str(part) for part in item["loc"]),
            message=item["msg"],
            type=item["type"],
        )
        for item in error.errors(include_url=False)
    )


@final
class Action:
    """A typed unit of work: a handler with pydantic input and output models, frozen.

    Build one with :func:`action` or :func:`define`; the constructor validates everything and
    infers the models from the handler's annotations when ``input_model``/``output_model`` are
    not given.
    """

    __slots__ = (*_FIELDS, "_context_param", "_distribution")

    name: str
    handler: Callable[..., Any]
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    description: str | None
    version: str
    policy: ActionPolicy
    is_async: bool
    wants_context: bool
    _context_param: str | None
    _distribution: str | None

    def __init__(
        self,
        *,
        name: str,
        handler: Callable[..., Any],
        input_model: type[BaseModel] | None = None,
        output_model: type[BaseModel] | None = None,
        description: str | None = None,
        version: str = "1",
        policy: ActionPolicy | None = None,
        **options: Any,
    ) -> None:
        """``options`` are the policy's (``retries=3``, ``rate="100/s"``...; see
        :class:`ActionPolicy`), applied over ``policy`` when both are given."""
        validate_name(name)
        _check_text(name, description, version)
        if policy is None:
            policy = build_policy(name, options)
        elif options:
            policy = build_policy(name, {**dict(policy.items()), **options})
        spec = _inspect_handler(name, handler, input_model, output_model)
        _check_policy(name, policy, spec)
        if description is None:
            description = _first_paragraph(getattr(handler, "__doc__", None))
        values: dict[str, Any] = {
            "name": name,
            "handler": handler,
            "description": description,
            "version": version,
            "policy": policy,
            **spec,
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_distribution", None)

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError(f"Action {self.name!r} is frozen; build a new one with define()")

    def __delattr__(self, key: str) -> NoReturn:
        raise AttributeError(f"Action {self.name!r} is frozen")

    def __repr__(self) -> str:
        return f"<Action {self.name} {self.input_model.__name__} -> {self.output_model.__name__}>"

    def __copy__(self) -> Action:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> Action:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by value of the slots (the handler and models by reference, as pickle does).
        return (_rebuild, ({key: getattr(self, key) for key in Action.__slots__},))

    def validate_input(self, data: Any) -> BaseModel:
        """Validate ``data`` (a mapping, a JSON str/bytes, or the input model) into the model."""
        from pydantic import BaseModel, ValidationError

        model = self.input_model
        if isinstance(data, model):
            return data
        try:
            if isinstance(data, BaseModel):
                problem = f"expected {model.__name__}, got {type(data).__name__}"
            elif isinstance(data, str | bytes | bytearray):
                return model.model_validate_json(data)
            elif isinstance(data, Mapping):
                return model.model_validate(dict(data))
            else:
                problem = (
                    f"expected a JSON object (dict, JSON text or {model.__name__}), "
                    f"got {type(data).__name__}"
                )
        except ValidationError as error:
            raise InvalidInputError(self.name, _field_errors(error)) from None
        raise InvalidInputError(self.name, (FieldError("", problem, "model_type"),))

    def validate_output(self, result: Any) -> BaseModel:
        """Validate what the handler returned (the output model or a mapping)."""
        from pydantic import ValidationError

        model = self.output_model
        if isinstance(result, model):
            return result
        if isinstance(result, Mapping):
            try:
                return model.model_validate(dict(result))
            except ValidationError as error:
                raise InvalidOutputError(
                    self.name, self._distribution, _field_errors(error)
                ) from None
        problem = f"expected {model.__name__} or a dict, got {type(result).__name__}"
        raise InvalidOutputError(
            self.name, self._distribution, (FieldError("", problem, "model_type"),)
        )

    def input_schema(self) -> dict[str, Any]:
        """The input model's JSON schema."""
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        """The output model's JSON schema."""
        return self.output_model.model_json_schema()

    def call_args(self, data: BaseModel, context: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments to call the handler with."""
        if self._context_param is None:
            return (data,), {}
        return (data,), {self._context_param: context}


def _rebuild(state: dict[str, Any]) -> Action:
    built = object.__new__(Action)
    for key, value in state.items():
        object.__setattr__(built, key, value)
    return built


def _first_paragraph(doc: str | None) -> str | None:
    if not doc:
        return None
    import inspect

    text = inspect.cleandoc(doc).split("\n\n", 1)[0]
    return " ".join(text.split()) or None


def _check_text(name: str, description: object, version: object) -> None:
    if description is not None and not isinstance(description, str):
        raise ActionDefinitionError(
            f"action {name}: description must be a string, got {type(description).__name__}",
            action=name,
        )
    if not isinstance(version, str) or not version:
        raise ActionDefinitionError(
            f"action {name}: version must be a non-empty string, got {version!r}", action=name
        )


def _check_policy(name: str, policy: ActionPolicy, spec: Mapping[str, Any]) -> None:
    """The options that depend on the handler: key fields exist in the input model, and
    ``io_bound`` is for sync handlers."""

    def fail(message: str) -> NoReturn:
        raise ActionDefinitionError(f"action {name}: {message}", action=name)

    if policy.io_bound and spec["is_async"]:
        fail("io_bound is for sync handlers; an async handler already runs beside others")
    if policy.cache is not None:
        fields = getattr(spec["input_model"], "model_fields", {})
        for name in policy.cache.fields():
            if name not in fields:
                known = ", ".join(sorted(fields)) or "none"
                fail(
                    f"cache tag field {name!r}: the input model {spec['input_model'].__name__} "
                    f"has no such field (fields: {known})"
                )
    for option in ("concurrency_key", "rate_key"):
        path = getattr(policy, option)
        if path is None:
            continue
        model: Any = spec["input_model"]
        for part in path.split("."):
            fields = getattr(model, "model_fields", None)
            if not isinstance(fields, dict) or part not in fields:
                known = ", ".join(sorted(fields)) if isinstance(fields, dict) else "none"
                fail(
                    f"{option} {path!r}: the input model {spec['input_model'].__name__} has no "
                    f"field {part!r} (fields: {known})"
                )
            model = fields[part].annotation
    if policy.scheduled:
        from pydantic import ValidationError

        try:
            spec["input_model"].model_validate_json(policy.schedule_data or "{}")
        except ValidationError as error:
            problems = "; ".join(str(e) for e in _field_errors(error))
            fail(
                f"schedule_data does not fit the input model {spec['input_model'].__name__}: "
                f"{problems}"
            )


def _is_model(obj: object) -> bool:
    from pydantic import BaseModel

    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _is_context(hint: object) -> bool:
    import sys

    # If the Context class was never imported, no annotation can be it: do not import it (and
    # logging with it) just to compare.
    module = sys.modules.get("switchyard._context")
    if module is not None and hint is module.Context:
        return True
    # An annotation that could not be resolved stays a string; accept the obvious spellings.
    return isinstance(hint, str) and hint.rsplit(".", 1)[-1] == "Context"


def _resolve_each(handler: object, local_names: dict[str, Any]) -> dict[str, Any]:
    """Resolve annotations one by one; an unresolvable one stays a string."""
    hints: dict[str, Any] = {}
    global_names = getattr(handler, "__globals__", {})
    for key, annotation in dict(getattr(handler, "__annotations__", {})).items():
        hints[key] = annotation
        if isinstance(annotation, str):
            try:
                hints[key] = eval(annotation, global_names, local_names)  # what get_type_hints does
            except Exception:
                continue
    return hints


def _definer_locals() -> dict[str, Any]:
    """The local names of the innermost calling frame outside switchyard itself."""
    import sys
    from types import FrameType

    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("switchyard."):
        frame = frame.f_back
    return dict(frame.f_locals) if frame is not None else {}


def _inspect_handler(
    name: str,
    handler: object,
    input_model: type[BaseModel] | None,
    output_model: type[BaseModel] | None,
) -> dict[str, Any]:
    import inspect
    import typing

    def fail(message: str) -> NoReturn:
        raise ActionDefinitionError(f"action {name}: {message}", action=name)

    if not callable(handler):
        fail(f"handler must be a function, got {type(handler).__name__}")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError) as error:
        fail(f"cannot read the handler's signature: {error}")
    try:
        hints: dict[str, Any] = typing.get_type_hints(handler)
    except Exception:
        # Models defined inside a function are not in the handler's globals: look them up in
        # the frame that defines the action, else keep the raw strings.
        hints = _resolve_each(handler, _definer_locals())

    params = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        fail("the handler must take the input model as its first positional parameter")
    first, rest = params[0], params[1:]
    context_param: str | None = None
    for param in rest:
        if _is_context(hints.get(param.name, param.annotation)):
            if context_param is not None or param.kind is inspect.Parameter.POSITIONAL_ONLY:
                fail(f"parameter {param.name!r}: take the Context once, by keyword-able name")
            context_param = param.name
        elif param.default is inspect.Parameter.empty and param.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            fail(
                f"parameter {param.name!r} has no default; a handler takes the input model "
                "and, optionally, a parameter annotated Context"
            )

    if input_model is None:
        input_model = hints.get(first.name)
        if input_model is None:
            fail(
                f"annotate the first parameter {first.name!r} with a pydantic model or pass input="
            )
    if isinstance(input_model, str):
        fail(f"cannot resolve the input annotation {input_model!r}; pass input= explicitly")
    if not _is_model(input_model):
        fail(f"the input model must be a pydantic BaseModel subclass, got {input_model!r}")
    if output_model is None:
        output_model = hints.get("return")
        if output_model is None:
            fail("annotate the handler's return type with a pydantic model or pass output=")
    if isinstance(output_model, str):
        fail(f"cannot resolve the return annotation {output_model!r}; pass output= explicitly")
    if not _is_model(output_model):
        fail(f"the output model must be a pydantic BaseModel subclass, got {output_model!r}")
    return {
        "input_model": input_model,
        "output_model": output_model,
        "is_async": inspect.iscoroutinefunction(handler),
        "wants_context": context_param is not None,
        "_context_param": context_param,
    }


def action(
    name: str,
    *,
    description: str | None = None,
    version: str = "1",
    input: type[BaseModel] | None = None,
    output: type[BaseModel] | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Action]:
    """Decorate a handler into an :class:`Action` (the decorator returns the Action).

    ``options`` are the action's policy (``queue``, ``retries``, ``timeout``, ``rate``...: see
    :class:`ActionPolicy`). The name and the options are checked now, so a typo fails at the
    decorator line, not at first call.
    """
    validate_name(name)
    policy = build_policy(name, options)

    def decorate(handler: Callable[..., Any]) -> Action:
        return Action(
            name=name,
            handler=handler,
            input_model=input,
            output_model=output,
            description=description,
            version=version,
            policy=policy,
        )

    return decorate


@final
class ActionBuilder:
    """An immutable fluent builder: every method returns a new builder; ``build()`` an Action."""

    __slots__ = ("_options",)
    _options: dict[str, Any]

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        validate_name(name)
        object.__setattr__(self, "_options", {**(options or {}), "name": name})

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError("ActionBuilder is immutable; its methods return new builders")

    def __repr__(self) -> str:
        return f"<ActionBuilder {self._options['name']}>"

    def _with(self, **changes: Any) -> ActionBuilder:
        return ActionBuilder(self._options["name"], {**self._options, **changes})

    def description(self, text: str) -> ActionBuilder:
        return self._with(description=text)

    def input(self, model: type[BaseModel]) -> ActionBuilder:
        return self._with(input_model=model)

    def output(self, model: type[BaseModel]) -> ActionBuilder:
        return self._with(output_model=model)

    def options(self, **options: Any) -> ActionBuilder:
        """Set policy options (``rate="100/s"``, ``concurrency=5``...: see ActionPolicy)."""
        merged = {**self._options.get("options", {}), **options}
        build_policy(self._options["name"], merged)  # a bad option fails at this line
        return self._with(options=merged)

    def queue(self, name: str | None) -> ActionBuilder:
        return self.options(queue=name)

    def retries(self, count: int, *, backoff: float = _UNSET) -> ActionBuilder:
        if backoff is _UNSET:
            return self.options(retries=count)
        return self.options(retries=count, backoff=backoff)

    def timeout(self, seconds: float | None) -> ActionBuilder:
        return self.options(timeout=seconds)

    def version(self, version: str) -> ActionBuilder:
        return self._with(version=version)

    def idempotent(self, value: bool = True) -> ActionBuilder:
        return self.options(idempotent=value)

    def handler(self, fn: Callable[..., Any]) -> ActionBuilder:
        return self._with(handler=fn)

    def build(self) -> Action:
        """The finished, frozen Action (raises ActionDefinitionError if anything is wrong)."""
        options = dict(self._options)
        policy = build_policy(options["name"], options.pop("options", {}))
        if "handler" not in options:
            raise ActionDefinitionError(
                f"action {options['name']}: no handler; call .handler(fn) before .build()",
                action=options["name"],
            )
        return Action(**options, policy=policy)


def define(name: str) -> ActionBuilder:
    """Start building the action ``name`` (see :class:`ActionBuilder`)."""
    return ActionBuilder(name)
