"""OpenTelemetry, optional: a job carries its producer's trace context; its run is a span in it.

Nothing here imports OpenTelemetry unless it is installed, and a producer injects a context only
when its application has already imported OpenTelemetry (no span can be active otherwise), so a
process that does not trace pays one dict lookup per ``schedule_action`` and nothing per job.
``SWITCHYARD_TRACING=0`` turns it off.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._consumer.source import Job

__all__ = ["JobSpan", "current_carrier", "start_job_span"]

log = logging.getLogger("switchyard_rq.tracing")

_AVAILABLE: list[bool] = []
_TRACER_NAME: Final = "switchyard_rq"


def _enabled() -> bool:
    if not _AVAILABLE:
        off = os.environ.get("SWITCHYARD_TRACING", "").strip().lower() in {"0", "false", "off"}
        _AVAILABLE.append(not off and find_spec("opentelemetry") is not None)
    return _AVAILABLE[0]


def current_carrier() -> str | None:
    """The caller's trace context as compact JSON (W3C ``traceparent``...), or None."""
    if "opentelemetry.context" not in sys.modules or not _enabled():
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


class JobSpan:
    """The span of one job run, current while the job runs (a handler's spans nest in it)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Any, token: Any) -> None:
        self._span = span
        self._token = token

    def finish(self, *, action: str | None, job: Job, outcome: str, error_type: str | None) -> None:
        from opentelemetry import context, trace

        span = self._span
        if action:
            span.update_name(f"run {action}")
            span.set_attribute("switchyard.action", action)
        span.set_attribute("switchyard.queue", job.queue)
        span.set_attribute("switchyard.job_id", job.id)
        span.set_attribute("switchyard.attempt", job.attempt)
        span.set_attribute("switchyard.outcome", outcome)
        if error_type:
            span.set_attribute("error.type", error_type)
            span.set_status(trace.Status(trace.StatusCode.ERROR, error_type))
        span.end()
        context.detach(self._token)


def start_job_span(job: Job) -> JobSpan | None:
    """Continue the trace ``job.trace`` holds with a consumer span (None: not tracing)."""
    if not job.trace or not _enabled():
        return None
    try:
        carrier = json.loads(job.trace)
        if not isinstance(carrier, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        log.debug("job %s: ignoring a bad trace context (%s)", job.id, exc)
        return None
    from opentelemetry import context, propagate, trace

    parent = propagate.extract({str(k): str(v) for k, v in carrier.items()})
    tracer = trace.get_tracer(_TRACER_NAME)
    span = tracer.start_span("run job", context=parent, kind=trace.SpanKind.CONSUMER)
    token = context.attach(trace.set_span_in_context(span, parent))
    return JobSpan(span, token)
