"""Metrics, job logs, traces and the live view against real worker processes and a real Redis
(db 9 only, flushed around each test)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import switchyard_rq
from switchyard_worker_testkit import free_port, scrape

SWITCHYARD = Path(sys.executable).parent / "switchyard"
WORKER = Path(sys.executable).parent / "switchyard-worker"

OBS_PLUGIN = """
from __future__ import annotations

from pydantic import BaseModel

from switchyard import Context, action
from switchyard_rq import get_connection


class In(BaseModel):
    id: str = "x"


class Out(BaseModel):
    ok: bool = True


@action("otest.ok")
def ok(data: In) -> Out:
    return Out()


@action("otest.fail")
def fail(data: In) -> Out:
    raise ValueError("secret-value-never-logged")


@action("otest.flaky", retries=2, backoff=0.0)
def flaky(data: In, ctx: Context) -> Out:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return Out()
"""

OBS_ENTRY_POINTS = """\
otest.ok = otest_plugin:ok
otest.fail = otest_plugin:fail
otest.flaky = otest_plugin:flaky
"""


@pytest.fixture(scope="module", autouse=True)
def _db9_to_ourselves() -> Iterator[None]:
    """This module and switchyard-rq's test_observe.py both use db 9, and other
    sessions may run either suite at the same time: one module at a time, machine-wide."""
    import fcntl
    import tempfile

    with (Path(tempfile.gettempdir()) / "switchyard-observe-tests-db9.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def redis_url(redis_url: str) -> str:
    """Overrides conftest's: these tests use db 9 of the same server (the machine's Redis, or
    the suite's own where the machine has none)."""
    return redis_url.rsplit("/", 1)[0] + "/9"


@pytest.fixture(scope="session")
def plugin_dir(clean_plugin_dir, tmp_path_factory) -> Path:
    """wtest-plugin plus the otest actions (succeed, fail, fail once then succeed)."""
    root = tmp_path_factory.mktemp("otest") / "plugins"
    shutil.copytree(clean_plugin_dir, root)
    (root / "otest_plugin.py").write_text(OBS_PLUGIN)
    entry_points = root / "wtest_plugin-0.1.dist-info" / "entry_points.txt"
    entry_points.write_text(entry_points.read_text() + OBS_ENTRY_POINTS)
    return root


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def run_known_sequence(registry) -> None:
    handles = [switchyard_rq.schedule_action("otest.ok", {}, registry=registry) for _ in range(3)]
    fails = [switchyard_rq.schedule_action("otest.fail", {}, registry=registry) for _ in range(2)]
    flaky = switchyard_rq.schedule_action("otest.flaky", {}, registry=registry)
    for handle in [*handles, flaky]:
        handle.result(timeout=20)
    for handle in fails:
        with pytest.raises(switchyard_rq.JobFailedError):
            handle.result(timeout=20)


def test_metrics_are_exact_across_processes_after_a_known_sequence(start_worker, registry):
    port = free_port()
    worker = start_worker("--min", "2", "--max", "2", "--health-port", str(port))
    worker.wait_children(2)
    run_known_sequence(registry)

    expected = {
        ("otest.ok", "succeeded"): 3,
        ("otest.fail", "failed"): 2,
        ("otest.flaky", "retried"): 1,
        ("otest.flaky", "succeeded"): 1,
    }
    deadline = time.monotonic() + 10
    while True:  # pool processes flush once a second
        samples = scrape(port)
        got = {
            key: value(
                samples, "switchyard_action_runs_total", queue="default", action=key[0],
                outcome=key[1],
            )
            for key in expected
        }  # fmt: skip
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == expected
    assert value(samples, "switchyard_action_runs_total", queue="default", action="otest.ok",
                 outcome="failed") == 0  # fmt: skip
    for action, runs in (("otest.ok", 3), ("otest.fail", 2), ("otest.flaky", 2)):
        labels = {"queue": "default", "action": action}
        assert value(samples, "switchyard_action_run_seconds_count", **labels) == runs
        assert value(samples, "switchyard_action_run_seconds_bucket", le="+Inf", **labels) == runs
        assert value(samples, "switchyard_job_wait_seconds_count", **labels) == runs
        assert 0 < value(samples, "switchyard_action_run_seconds_sum", **labels) < 5
    # buckets resolve 1 ms .. 60 s
    bounds = {
        float(dict(labels)["le"])
        for (name, labels) in samples
        if name == "switchyard_action_run_seconds_bucket" and dict(labels)["le"] != "+Inf"
    }
    assert min(bounds) == 0.001
    assert max(bounds) == 60.0
    assert len(bounds) >= 20
    # pool and queue gauges from the supervisor
    assert value(samples, "switchyard_worker_processes") == 2
    assert value(samples, "switchyard_worker_processes_min") == 2
    assert value(samples, "switchyard_worker_processes_max") == 2
    assert ("switchyard_queue_depth", (("queue", "default"),)) in samples
    assert value(samples, "switchyard_redis_connections", state="in_use") >= 0
    assert ("switchyard_redis_command_errors_total", ()) in samples
    # every metric the Grafana dashboard queries is one the worker serves
    dashboard = (Path(__file__).parents[3] / "docs" / "grafana" / "switchyard.json").read_text()
    served = {name for name, _ in samples}
    queried = {  # (database metrics are served once a process opens one: test_database.py)
        n
        for n in re.findall(r"switchyard_[a-z_]+", dashboard)
        if not n.startswith("switchyard_db_")
    }
    assert queried  # the check below checks something
    assert queried - served == set()
    # the per-job log line: outcome, action, no payload or error message
    text = worker.text()
    assert "succeeded otest.ok job=" in text
    assert "failed otest.fail job=" in text
    assert "retried otest.flaky job=" in text
    assert "ValueError" in text
    assert "secret-value-never-logged" not in text
    # a process that leaves keeps its counts (recycling, or a crash)
    kids = worker.children()
    os.kill(kids[0], signal.SIGKILL)
    worker.wait_log("was killed by SIGKILL")
    samples = scrape(port)
    assert value(samples, "switchyard_action_runs_total", queue="default", action="otest.ok",
                 outcome="succeeded") == 3  # fmt: skip
    assert worker.stop() == 0


def test_metrics_can_be_scraped_while_jobs_run(start_worker, registry):
    port = free_port()
    worker = start_worker("--min", "1", "--max", "2", "--health-port", str(port))
    worker.wait_children(1)
    calls = [("otest.ok", {"id": str(n)}) for n in range(2000)]
    handles = switchyard_rq.schedule_many(calls, registry=registry)
    seen = []
    while handles[-1].status not in ("finished", "failed"):
        samples = scrape(port)
        seen.append(
            value(samples, "switchyard_action_runs_total", queue="default", action="otest.ok",
                  outcome="succeeded")
        )  # fmt: skip
        time.sleep(0.05)
    handles[-1].result(timeout=30)
    deadline = time.monotonic() + 5
    while seen[-1] < 2000 and time.monotonic() < deadline:
        time.sleep(0.2)
        seen.append(
            value(scrape(port), "switchyard_action_runs_total", queue="default",
                  action="otest.ok", outcome="succeeded")
        )  # fmt: skip
    assert seen == sorted(seen)  # counters never go back while processes come and go
    assert seen[-1] == 2000
    assert worker.stop() == 0


def test_json_logs_have_one_line_per_job_outcome(start_worker, registry):
    worker = start_worker("--min", "1", "--max", "1", "--log-format", "json")
    worker.wait_children(1)
    run_known_sequence(registry)
    assert worker.stop() == 0  # a clean exit writes out every line its processes held
    entries = [json.loads(line) for line in worker.text().splitlines() if line.strip()]
    jobs = [e for e in entries if e.get("event") == "job"]
    assert sorted((j["action"], j["outcome"]) for j in jobs) == sorted(
        [("otest.ok", "succeeded")] * 3
        + [("otest.fail", "failed")] * 2
        + [("otest.flaky", "retried"), ("otest.flaky", "succeeded")]
    )
    for job in jobs:
        assert set(job) >= {"job_id", "queue", "attempt", "seconds", "error_type", "level"}
    fail = next(j for j in jobs if j["outcome"] == "failed")
    assert fail["error_type"] == "ValueError"
    assert fail["level"] == "warning"
    retried = next(j for j in jobs if j["outcome"] == "retried")
    assert retried["attempt"] == 1
    assert retried["error_type"] == "RuntimeError"
    assert "secret-value-never-logged" not in worker.text()
    assert all("message" in e for e in entries if e.get("event") != "job")


def test_job_log_failures_without_metrics_keeps_the_failure_lines(start_worker, registry):
    worker = start_worker("--min", "1", "--max", "1", "--no-metrics", "--job-log", "failures")
    worker.wait_children(1)
    run_known_sequence(registry)
    assert worker.stop() == 0  # job lines reach stderr in batches, and all of them at exit
    text = worker.text()
    assert text.count("failed otest.fail job=") == 2
    assert text.count("retried otest.flaky job=") == 1
    assert "succeeded" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log-format", "xml"], "--log-format: Input should be 'text' or 'json'"),
        (["--job-log", "some"], "--job-log: Input should be 'all', 'failures' or 'off'"),
    ],
)
def test_bad_log_options_are_one_line_errors(args, message, redis_db, plugin_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    proc = subprocess.run(
        [str(WORKER), *args],
        env=env | {"SWITCHYARD_REDIS_URL": "redis://127.0.0.1:6379/9"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert message in proc.stderr, proc.stderr


def cli_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    return env | {"SWITCHYARD_REDIS_URL": url, "SWITCHYARD_REDIS_RETRIES": "1"}


def test_top_renders_a_live_worker_in_a_terminal_and_exits_on_sigint(
    start_worker, registry, redis_url
):
    import fcntl
    import pty
    import struct
    import termios

    worker = start_worker("--min", "1", "--max", "1")
    worker.wait_children(1)
    run_known_sequence(registry)
    pid, fd = pty.fork()
    if pid == 0:  # the child: switchyard top on a 160x45 terminal
        os.execve(str(SWITCHYARD), [str(SWITCHYARD), "top", "--interval", "0.2"],
                  cli_env(redis_url))  # fmt: skip
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
    screen = b""
    deadline = time.monotonic() + 20
    while b"otest.flaky" not in screen and time.monotonic() < deadline:
        try:
            screen += os.read(fd, 65536)
        except OSError:
            break
    os.kill(pid, signal.SIGINT)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = screen.decode(errors="replace")
    assert os.WIFEXITED(status), text
    assert os.WEXITSTATUS(status) == 0, text
    assert "Traceback" not in text
    assert "QUEUE" in text
    assert "ACTION" in text
    assert "otest.fail" in text
    assert "workers: 1 pool(s), 1 processes" in text
    assert text.rstrip().endswith("\x1b[?25h\x1b[?1049l")  # the terminal is given back
    assert worker.stop() == 0


def test_stats_json_is_one_snapshot_of_queues_actions_and_pools(start_worker, registry, redis_url):
    worker = start_worker("--min", "1", "--max", "1")
    worker.wait_children(1)
    run_known_sequence(registry)
    deadline = time.monotonic() + 10
    while True:
        proc = subprocess.run(
            [str(SWITCHYARD), "stats", "--json", "--window", "0.2"],
            env=cli_env(redis_url), capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        view = json.loads(proc.stdout)
        actions = {a["action"]: a for a in view["actions"]}
        if len(actions) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    counts = {name: (a["succeeded"], a["failed"], a["retried"]) for name, a in actions.items()}
    assert counts == {"otest.ok": (3, 0, 0), "otest.fail": (0, 2, 0), "otest.flaky": (1, 0, 1)}
    assert [q["queue"] for q in view["queues"]] == ["default"]
    assert view["workers"]["processes"] == 1
    assert view["pools"][0]["min"] == 1
    assert worker.stop() == 0


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["top", "--redis-url", "redis://127.0.0.1:1/0"], "error: cannot reach Redis at", 1),
        (["stats", "--redis-url", "redis://127.0.0.1:1/0"], "error: cannot reach Redis at", 1),
        (["top", "--interval", "0"], "error: argument --interval: must be a number of seconds", 2),
        (["stats", "--window", "-1"], "error: argument --window: must be a number of seconds", 2),
    ],
)
def test_top_and_stats_fail_in_one_line(args, message, code, redis_url):
    proc = subprocess.run(
        [str(SWITCHYARD), *args], env=cli_env(redis_url), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == code
    assert proc.stderr.startswith(message), proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_top_into_a_pipe_prints_one_plain_snapshot(start_worker, registry, redis_url):
    worker = start_worker("--min", "1", "--max", "1")
    worker.wait_children(1)
    run_known_sequence(registry)
    deadline = time.monotonic() + 10
    while True:  # until the pool process has published its stats (once a second)
        proc = subprocess.run(
            [str(SWITCHYARD), "top", "--interval", "0.5"], env=cli_env(redis_url),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        if "otest.ok" in proc.stdout or time.monotonic() > deadline:
            break
    assert "\x1b" not in proc.stdout  # no terminal codes where there is no terminal
    assert proc.stdout.startswith("switchyard stats  redis://127.0.0.1:6379/9  ")
    assert "(rates over 0.5 s)" in proc.stdout.splitlines()[0]
    assert "QUEUE" in proc.stdout
    assert "otest.ok" in proc.stdout
    assert worker.stop() == 0


def test_stats_shows_the_last_known_percentiles_with_their_age(start_worker, registry, redis_url):
    worker = start_worker("--min", "1", "--max", "1")
    worker.wait_children(1)
    run_known_sequence(registry)
    time.sleep(3.0)  # published (within ~2 s of the last job), and then nothing for a while

    def stats(*args: str) -> str:
        return subprocess.run(
            [str(SWITCHYARD), "stats", "--window", "0.3", *args], env=cli_env(redis_url),
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip

    ok = {a["action"]: a for a in json.loads(stats("--json"))["actions"]}["otest.ok"]
    assert ok["rate"] == 0  # no job in the window...
    assert ok["percentiles_over"] == "all runs"  # ...so the figures of every run so far
    assert 0 < ok["p50"] <= ok["p95"] <= ok["p99"] < 1.0
    assert 0.5 < ok["last_job_age"] < 30
    line = next(x for x in stats().splitlines() if x.startswith("otest.ok "))
    assert re.search(r"\bms\b|\dms", line), line  # the percentiles, not "-"
    assert re.search(r"\d+s ago$", line), line
    assert worker.stop() == 0
