"""switchyard.metrics and switchyard.tracing: per-action metrics and spans of in-process calls."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field
from switchyard import HandlerError, InvalidInputError, action, call_action
from switchyard.metrics import BUCKETS, MetricsHook
from switchyard.testing import make_registry
from switchyard.tracing import TracingHook


class In(BaseModel):
    n: int = Field(ge=0)


class Out(BaseModel):
    n: int


@action("obs.double")
def double(data: In) -> Out:
    return Out(n=data.n * 2)


@action("obs.boom")
def boom(data: In) -> Out:
    raise KeyError("payload-secret")


def sample(prom: CollectorRegistry, name: str, **labels: str) -> float:
    return prom.get_sample_value(name, labels) or 0.0


def test_metrics_hook_counts_and_times_each_call_exactly():
    prom = CollectorRegistry()
    reg = make_registry(double, boom, hooks=(MetricsHook(registry=prom),))
    for n in range(3):
        assert call_action("obs.double", {"n": n}, registry=reg).n == 2 * n
    for _ in range(2):
        with pytest.raises(HandlerError):
            call_action("obs.boom", {"n": 1}, registry=reg)
    with pytest.raises(InvalidInputError):
        call_action("obs.double", {"n": -1}, registry=reg)

    runs = "switchyard_action_runs_total"
    q = {"queue": "in-process"}
    assert sample(prom, runs, action="obs.double", outcome="succeeded", **q) == 3
    assert sample(prom, runs, action="obs.double", outcome="failed", **q) == 1  # bad input
    assert sample(prom, runs, action="obs.boom", outcome="failed", **q) == 2
    assert sample(prom, runs, action="obs.boom", outcome="succeeded", **q) == 0
    seconds = "switchyard_action_run_seconds"
    # bad input fails before the handler: counted, not timed
    assert sample(prom, seconds + "_count", action="obs.double", **q) == 3
    assert sample(prom, seconds + "_count", action="obs.boom", **q) == 2
    assert sample(prom, seconds + "_bucket", action="obs.double", le="60.0", **q) == 3
    assert BUCKETS[0] == 0.001
    assert BUCKETS[-1] == 60.0


def test_two_hooks_on_one_prometheus_registry_share_its_metrics():
    prom = CollectorRegistry()
    one = make_registry(double, hooks=(MetricsHook(registry=prom),))
    two = make_registry(double, hooks=(MetricsHook(registry=prom),))
    call_action("obs.double", {"n": 1}, registry=one)
    call_action("obs.double", {"n": 1}, registry=two)
    assert sample(prom, "switchyard_action_runs_total", queue="in-process",
                  action="obs.double", outcome="succeeded") == 2  # fmt: skip


def test_tracing_hook_makes_one_span_per_call_in_the_current_trace():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reg = make_registry(double, boom, hooks=(TracingHook(tracer_provider=provider),))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request") as parent:
        call_action("obs.double", {"n": 2}, registry=reg)
        with pytest.raises(HandlerError):
            call_action("obs.boom", {"n": 2}, registry=reg)
        with pytest.raises(InvalidInputError):
            call_action("obs.double", {"n": -2}, registry=reg)
    finished = exporter.get_finished_spans()
    assert [s.name for s in finished] == [
        "call obs.double", "call obs.boom", "call obs.double", "request"
    ]  # fmt: skip
    ok, bad, invalid = finished[:3]
    assert invalid.attributes["error.type"] == "InvalidInputError"
    trace_id = parent.get_span_context().trace_id
    for span in exporter.get_finished_spans():
        assert span.context.trace_id == trace_id
    assert ok.parent.span_id == parent.get_span_context().span_id
    assert ok.attributes["switchyard.action"] == "obs.double"
    assert ok.attributes["switchyard.queue"] == "in-process"
    assert ok.attributes["switchyard.attempt"] == 1
    assert ok.attributes["switchyard.outcome"] == "succeeded"
    assert bad.attributes["switchyard.outcome"] == "failed"
    assert bad.attributes["error.type"] == "KeyError"
    assert bad.status.status_code is StatusCode.ERROR
    assert "payload-secret" not in str(bad.attributes) + str(bad.status.description)


def test_import_switchyard_and_a_call_load_neither_prometheus_nor_opentelemetry():
    code = (
        "import sys\n"
        "from pydantic import BaseModel\n"
        "from switchyard import action, call_action\n"
        "from switchyard.testing import make_registry\n"
        "class In(BaseModel):\n    n: int\n"
        "@action('calc.same')\n"
        "def same(data: In) -> In:\n    return data\n"
        "call_action('calc.same', {'n': 1}, registry=make_registry(same))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules\n"
        "              if m.startswith(('prometheus_client', 'opentelemetry'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
