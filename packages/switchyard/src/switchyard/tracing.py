"""OpenTelemetry spans of in-process calls (``pip install 'switchyard[tracing]'``).

::

    from switchyard import default_registry
    from switchyard.tracing import TracingHook

    default_registry().add_hooks(TracingHook())

Each call becomes a span ``call <action>`` (a child of the current span), current while the
handler runs, with the attributes ``switchyard.action``, ``switchyard.queue`` (``in-process`` for
direct calls), ``switchyard.job_id``, ``switchyard.attempt`` and ``switchyard.outcome``
(``succeeded``/``failed``, plus ``error.type`` and an error status). Jobs run by a worker get a
span of their own from switchyard-rq, continuing the producer's trace; this hook nests in it.
``import switchyard`` never imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from opentelemetry import context as otel_context
from opentelemetry import trace

from ._hookspecs import hookimpl

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._action import Action
    from ._context import Context
    from ._errors import SwitchyardError
    from ._registry import Registry

__all__ = ["TracingHook", "enable"]


@final
class TracingHook:
    """A hook plugin opening a span per call (from before-call to after-call or on-error)."""

    __slots__ = ("_open", "_tracer")

    def __init__(self, *, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("switchyard", tracer_provider=tracer_provider)
        self._open: dict[str, tuple[Any, object]] = {}

    def _start(self, action: Action, context: Context) -> Any:
        span = self._tracer.start_span(f"call {action.name}")
        span.set_attribute("switchyard.action", action.name)
        span.set_attribute("switchyard.queue", context.queue or "in-process")
        span.set_attribute("switchyard.attempt", context.attempt)
        if context.job_id:
            span.set_attribute("switchyard.job_id", context.job_id)
        return span

    @hookimpl
    def switchyard_before_call(self, action: Action, context: Context, data: BaseModel) -> None:
        span = self._start(action, context)
        token = otel_context.attach(trace.set_span_in_context(span))
        self._open[context.call_id] = (span, token)

    @hookimpl
    def switchyard_after_call(self, action: Action, context: Context, result: BaseModel) -> None:
        self._end(action, context, None)

    @hookimpl
    def switchyard_on_error(self, action: Action, context: Context, error: SwitchyardError) -> None:
        self._end(action, context, error)

    def _end(self, action: Action, context: Context, error: SwitchyardError | None) -> None:
        opened = self._open.pop(context.call_id, None)
        if opened is None:  # failed before the before-call hook (invalid input)
            span, token = self._start(action, context), None
        else:
            span, token = opened
        span.set_attribute("switchyard.outcome", "failed" if error else "succeeded")
        if error is not None:
            error_type = getattr(error, "error_type", None) or type(error).__name__
            span.set_attribute("error.type", error_type)
            span.set_status(trace.Status(trace.StatusCode.ERROR, error_type))
        span.end()
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]


def enable(registry: Registry | None = None, **options: Any) -> TracingHook:
    """Register a :class:`TracingHook` on ``registry`` (default: the default registry)."""
    if registry is None:
        from ._default import default_registry

        registry = default_registry()
    hook = TracingHook(**options)
    registry.add_hooks(hook)
    return hook
