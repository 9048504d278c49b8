"""Job lines written by JobLines are the lines a ``switchyard.jobs`` record would format to."""

from __future__ import annotations

import io
import logging

import pytest
import switchyard_rq
from switchyard_worker._logs import JobLines, JsonFormatter, TextFormatter

OK = switchyard_rq.JobReport(
    "geo.distance", "ab" * 16, "default", 1, "succeeded", 0.0004, 0.01, None
)
FAILED = switchyard_rq.JobReport(
    "geo.distance", "cd" * 16, "bulk", 2, "failed", 0.25, None, "KeyError"
)


def _record(report: switchyard_rq.JobReport, created: float) -> logging.LogRecord:
    level = logging.INFO if report.outcome == "succeeded" else logging.WARNING
    record = logging.LogRecord(
        "switchyard.jobs", level, __file__, 1, "%s", (report.message(),), None
    )
    record.created = created
    record.job = report
    return record


@pytest.mark.parametrize("formatter_class", [TextFormatter, JsonFormatter])
@pytest.mark.parametrize("report", [OK, FAILED])
def test_a_job_line_is_the_line_its_record_would_give(formatter_class, report):
    formatter = formatter_class("vm.1.1")
    created = 1_795_900_000.123456
    assert formatter.job_line(report, created) == formatter.format(_record(report, created))


def test_the_text_line_reads_as_before():
    line = TextFormatter("vm.1.1").job_line(FAILED, 1_795_900_000.5)
    assert line == (
        "2026-11-28 21:06:40.500 WARNING [vm.1.1] switchyard.jobs: failed geo.distance "
        f"job={'cd' * 16} queue=bulk attempt=2 250.0ms KeyError"
    )


@pytest.mark.parametrize(("job_log", "written"), [("all", 2), ("failures", 1), ("off", 0)])
def test_job_lines_follow_the_job_log_setting(job_log, written):
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(TextFormatter("vm.1.1"))
    lines = JobLines(handler, job_log)
    lines.job_done(OK)
    lines.job_done(FAILED)
    text = handler.stream.getvalue()
    assert text.count("\n") == written
    if written == 1:
        assert "failed geo.distance" in text
