"""Prometheus metrics of in-process calls (``pip install 'switchyard[metrics]'``).

A web process that calls actions with ``call_action`` gets the same per-action metrics a worker
exposes, by registering one hook plugin::

    from switchyard import default_registry
    from switchyard.metrics import MetricsHook

    default_registry().add_hooks(MetricsHook())      # then serve prometheus_client's REGISTRY

Metrics (labels ``queue``, ``action``; ``queue`` is ``in-process`` for direct calls and the job's
queue when the hook runs in a worker): ``switchyard_action_runs_total`` (label ``outcome``:
``succeeded`` or ``failed``) and the histogram ``switchyard_action_run_seconds`` (buckets from
1 ms to 60 s, :data:`BUCKETS`). ``import switchyard`` never imports this module.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Final, final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from ._hookspecs import hookimpl

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._action import Action
    from ._context import Context
    from ._errors import SwitchyardError
    from ._registry import Registry

__all__ = ["BUCKETS", "IN_PROCESS", "MetricsHook", "enable"]

#: histogram bounds in seconds, the same as the worker's (p50/p95/p99 from 1 ms to 60 s)
BUCKETS: Final = (
    0.001, 0.0015, 0.0025, 0.004, 0.006, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.15, 0.25,
    0.4, 0.6, 1.0, 1.5, 2.5, 4.0, 6.0, 10.0, 15.0, 25.0, 40.0, 60.0,
)  # fmt: skip
#: the ``queue`` label of a call made in process
IN_PROCESS: Final = "in-process"

_METRICS: dict[int, tuple[Counter, Histogram]] = {}
_LOCK = threading.Lock()


def _metrics(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    """One set of metric objects per Prometheus registry (they may be registered once only)."""
    with _LOCK:
        found = _METRICS.get(id(registry))
        if found is None:
            runs = Counter(
                "switchyard_action_runs",
                "Action runs by outcome (succeeded, failed, retried)",
                ["queue", "action", "outcome"],
                registry=registry,
            )
            seconds = Histogram(
                "switchyard_action_run_seconds",
                "Action run time (handler and validation), seconds",
                ["queue", "action"],
                buckets=BUCKETS,
                registry=registry,
            )
            found = _METRICS[id(registry)] = (runs, seconds)
        return found


@final
class MetricsHook:
    """A hook plugin counting every call and timing it (from the before-call hook to the
    after-call or on-error hook). ``registry`` is the Prometheus registry (default: the global
    ``prometheus_client.REGISTRY``). Calls that fail before their before-call hook (invalid
    input) are counted as failed, without a run time."""

    __slots__ = ("_runs", "_seconds", "_started")

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self._runs, self._seconds = _metrics(registry if registry is not None else REGISTRY)
        self._started: dict[str, float] = {}

    @hookimpl
    def switchyard_before_call(self, action: Action, context: Context, data: BaseModel) -> None:
        self._started[context.call_id] = time.perf_counter()

    @hookimpl
    def switchyard_after_call(self, action: Action, context: Context, result: BaseModel) -> None:
        self._done(action, context, "succeeded")

    @hookimpl
    def switchyard_on_error(self, action: Action, context: Context, error: SwitchyardError) -> None:
        self._done(action, context, "failed")

    def _done(self, action: Action, context: Context, outcome: str) -> None:
        started = self._started.pop(context.call_id, None)
        queue = context.queue or IN_PROCESS
        self._runs.labels(queue, action.name, outcome).inc()
        if started is not None:
            self._seconds.labels(queue, action.name).observe(time.perf_counter() - started)


def enable(registry: Registry | None = None, **options: Any) -> MetricsHook:
    """Register a :class:`MetricsHook` on ``registry`` (default: the default registry)."""
    if registry is None:
        from ._default import default_registry

        registry = default_registry()
    hook = MetricsHook(**options)
    registry.add_hooks(hook)
    return hook
