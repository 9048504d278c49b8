"""The progress display: redrawn on a terminal, plain lines in a pipe, and the final table."""

from __future__ import annotations

import io

from yard._build import BuildReport, MemberResult
from yard._progress import Live, Plain, Quiet, failures, reporter, table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def results():
    return {
        "base": MemberResult("base", "1.0", True, state="cache"),
        "mid": MemberResult("mid", "1.0", True, state="failed", seconds=1.25,
                            reason="uv build exited with 2", log_tail=["boom"]),
        "leaf": MemberResult("leaf", "1.0", True, state="skipped",
                             reason="needs mid, which failed"),
        "lib": MemberResult("lib", None, False, state="built", seconds=0.5),
    }  # fmt: skip


def play(progress) -> None:
    progress.begin(["base", "mid", "leaf", "lib"])
    for result in results().values():
        state = result.state
        result.state = "building"
        progress.update(result)
        result.state = state
        progress.update(result)
    progress.end()


def test_a_terminal_gets_the_live_display(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    stream = Terminal()
    progress = reporter(stream, quiet=False)
    assert isinstance(progress, Live)
    play(progress)
    text = stream.getvalue()
    assert "\x1b[" in text  # redrawn in place
    assert "  FAILED     mid  1.2 s  (uv build exited with 2)" in text
    assert "4/4 done" in text
    assert text.endswith("\x1b[J")  # the live block is cleared before the table


def test_a_pipe_gets_plain_lines_and_json_gets_nothing():
    stream = io.StringIO()
    progress = reporter(stream, quiet=False)
    assert isinstance(progress, Plain)
    play(progress)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()[1:]]
    assert "building mid" in lines
    assert "FAILED mid (1.2 s): uv build exited with 2" in lines
    assert "skipped leaf: needs mid, which failed" in lines
    assert "\x1b" not in stream.getvalue()
    assert isinstance(reporter(Terminal(), quiet=True), Quiet)


def test_the_table_and_the_failure_report():
    report = BuildReport(results(), seconds=3.5)
    text = table(report).splitlines()
    assert text[0].split() == ["member", "version", "result", "time"]
    assert text[2].split() == ["mid", "1.0", "FAILED", "1.2", "s"]
    assert text[4].split() == ["lib", "-", "built", "(for", "manifest)", "0.5", "s"]
    assert text[-1] == "built 1, from cache 1, skipped 1, failed 1 in 3.50 s"
    assert not report.ok
    err = io.StringIO()
    failures(report, err)
    assert err.getvalue().splitlines() == [
        "yard: error: mid failed to build (uv build exited with 2); end of its log:",
        "  | boom",
        "yard: skipped because they need mid: leaf",
    ]
