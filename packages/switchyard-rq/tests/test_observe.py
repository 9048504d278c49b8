"""Traces from schedule_action to the job's run, job reports and stats (Redis db 9 only)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from switchyard import Registry
from switchyard.tracing import TracingHook
from switchyard_rq_testkit import URL, machine_lock

import switchyard_rq

URL9 = URL.rsplit("/", 1)[0] + "/9"
HERE = Path(__file__).parent


@pytest.fixture(scope="module", autouse=True)
def _db9_to_ourselves() -> Iterator[None]:
    """This module and switchyard-worker's test_observability.py both use db 9, and other
    sessions may run either suite at the same time: one module at a time, machine-wide."""
    with machine_lock("switchyard-observe-tests-db9"):
        yield


@pytest.fixture
def conn9(monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", URL9)
    client = switchyard_rq.get_connection(URL9)
    client.flushdb()
    yield client
    client.flushdb()


_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """The process's tracer provider (set once) exporting into memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    return _EXPORTER


class Reports:
    def __init__(self) -> None:
        self.items: list[switchyard_rq.JobReport] = []

    def job_done(self, report: switchyard_rq.JobReport) -> None:
        self.items.append(report)


def test_one_trace_from_scheduling_to_result(conn9, reg: Registry, spans):
    reg.add_hooks(TracingHook())  # the in-process span nests in the job's span
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("web request") as request:
        ok = switchyard_rq.schedule_action("demo.double", {"x": 21}, registry=reg)
        bad = switchyard_rq.schedule_action("demo.boom", {"x": 1}, registry=reg)
    carrier = json.loads(conn9.hget(f"rq:job:{ok.id}", "sy_trace"))
    assert carrier["traceparent"].startswith("00-")

    with switchyard_rq.Consumer(conn9, ["default"], registry=reg, name="t-trace") as consumer:
        assert consumer.work_one(5)
        assert consumer.work_one(5)
    assert ok.result(timeout=5).model_dump() == {"y": 42}
    with pytest.raises(switchyard_rq.JobFailedError):
        bad.result(timeout=5)

    finished = {s.name: s for s in spans.get_finished_spans()}
    assert set(finished) == {
        "web request", "run demo.double", "call demo.double", "run demo.boom", "call demo.boom"
    }  # fmt: skip
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in finished.values()} == {trace_id}
    run, call = finished["run demo.double"], finished["call demo.double"]
    assert run.parent.span_id == request.get_span_context().span_id
    assert call.parent.span_id == run.context.span_id
    assert run.kind is trace.SpanKind.CONSUMER
    assert dict(run.attributes) == {
        "switchyard.action": "demo.double",
        "switchyard.queue": "default",
        "switchyard.job_id": ok.id,
        "switchyard.attempt": 1,
        "switchyard.outcome": "succeeded",
    }
    failed = finished["run demo.boom"]
    assert failed.attributes["switchyard.outcome"] == "failed"
    assert failed.attributes["error.type"] == "ValueError"
    assert failed.status.status_code is StatusCode.ERROR


def test_no_active_span_no_trace_field_and_no_span(conn9, reg: Registry, spans):
    handle = switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    assert conn9.hget(f"rq:job:{handle.id}", "sy_trace") is None
    with switchyard_rq.Consumer(conn9, ["default"], registry=reg, name="t-notrace") as consumer:
        assert consumer.work_one(5)
    assert handle.result(timeout=5).model_dump() == {"y": 2}
    assert spans.get_finished_spans() == ()


def test_a_bad_trace_field_is_ignored_and_the_job_runs(conn9, reg: Registry, spans):
    handle = switchyard_rq.schedule_action("demo.double", {"x": 2}, registry=reg)
    conn9.hset(f"rq:job:{handle.id}", "sy_trace", "not json [")
    with switchyard_rq.Consumer(conn9, ["default"], registry=reg, name="t-bad") as consumer:
        assert consumer.work_one(5)
    assert handle.result(timeout=5).model_dump() == {"y": 4}
    assert spans.get_finished_spans() == ()


def test_the_observer_gets_one_report_per_job_with_outcome_and_wait(conn9, reg: Registry):
    reports = Reports()
    handles = [
        switchyard_rq.schedule_action(name, {"x": 1}, registry=reg)
        for name in ("demo.double", "demo.boom", "demo.flaky")
    ]
    with switchyard_rq.Consumer(
        conn9, ["default"], registry=reg, name="t-obs", observer=reports
    ) as consumer:
        consumer.run(max_jobs=4, idle_timeout=0.2)  # flaky fails once, then runs again
    assert handles[2].result(timeout=5) is not None
    got = [(r.action, r.outcome, r.attempt, r.error_type) for r in reports.items]
    assert got == [
        ("demo.double", "succeeded", 1, None),
        ("demo.boom", "failed", 1, "ValueError"),
        ("demo.flaky", "retried", 1, "RuntimeError"),
        ("demo.flaky", "succeeded", 2, None),
    ]
    for report in reports.items:
        assert report.queue == "default"
        assert report.waited is not None
        assert 0 <= report.waited < 5
        assert 0 < report.seconds < 5


def test_failures_are_logged_when_only_failures_are_wanted_and_nothing_observes(
    conn9, reg: Registry, caplog
):
    switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    switchyard_rq.schedule_action("demo.boom", {"x": 2}, registry=reg)
    caplog.set_level(logging.WARNING, logger="switchyard.jobs")
    with switchyard_rq.Consumer(conn9, ["default"], registry=reg, name="t-log") as consumer:
        consumer.run(max_jobs=2, idle_timeout=0.2)
    lines = [r.getMessage() for r in caplog.records if r.name == "switchyard.jobs"]
    assert len(lines) == 1
    assert re.fullmatch(
        r"failed demo\.boom job=[0-9a-f]{32} queue=default attempt=1 \d+\.\dms ValueError",
        lines[0],
    )


def test_log_jobs_false_leaves_the_lines_to_the_observer(conn9, reg: Registry, caplog):
    reports = Reports()
    switchyard_rq.schedule_action("demo.boom", {"x": 2}, registry=reg)
    caplog.set_level(logging.INFO, logger="switchyard.jobs")
    with switchyard_rq.Consumer(
        conn9, ["default"], registry=reg, name="t-nolog", observer=reports, log_jobs=False
    ) as consumer:
        consumer.run(max_jobs=1, idle_timeout=0.2)
    assert [r for r in caplog.records if r.name == "switchyard.jobs"] == []
    assert [r.outcome for r in reports.items] == ["failed"]


def test_job_stats_count_and_publish_what_top_reads(conn9, reg: Registry):
    stats = switchyard_rq.JobStats()
    for name in ("demo.double", "demo.double", "demo.boom"):
        switchyard_rq.schedule_action(name, {"x": 1}, registry=reg)
    with switchyard_rq.Consumer(
        conn9, ["default"], registry=reg, name="t-stats", observer=stats
    ) as consumer:
        consumer.run(max_jobs=3, idle_timeout=0.2)
    stats.publish(conn9, "t-stats")
    switchyard_rq.publish_pool_stats(conn9, "host.1", {"processes": 2, "busy": 1})
    from switchyard_rq._ops.stats import read_snapshot, run_buckets

    snap = read_snapshot(conn9)
    rows = snap.consumers["t-stats"]
    double, boom = rows[("default", "demo.double")], rows[("default", "demo.boom")]
    assert double[:3] == [2, 0, 0]
    assert boom[:3] == [0, 1, 0]
    assert sum(run_buckets(double)) == 2
    assert snap.pools["host.1"]["processes"] == 2
    assert snap.queues["default"][0] == 0


def test_without_opentelemetry_nothing_of_it_is_imported(conn9):
    code = f"""
import sys
sys.modules["opentelemetry"] = None  # as if the extra were not installed
sys.path.insert(0, {str(HERE)!r})
import switchyard_rq
from switchyard_rq_testkit import registry
reg = registry()
conn = switchyard_rq.get_connection({URL9!r})
handle = switchyard_rq.schedule_action("demo.double", {{"x": 3}}, registry=reg, connection=conn)
parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
conn.hset("rq:job:" + handle.id, "sy_trace", '{{"traceparent": "' + parent + '"}}')
with switchyard_rq.Consumer(conn, ["default"], registry=reg, name="t-nootel") as consumer:
    assert consumer.work_one(5)
assert handle.result(timeout=5).model_dump() == {{"y": 6}}
print(sorted(m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
