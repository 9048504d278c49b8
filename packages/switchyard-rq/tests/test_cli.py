"""`switchyard schedule | jobs | routes`, run as a user would, with a real plugin (acme-text)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from conftest import URL  # type: ignore[import-not-found]
from switchyard import Registry

import switchyard_rq


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.switchyard]\ndefault-queue = "main"\n\n'
        '[tool.switchyard.routing]\n"text.*" = "words"\n'
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def plugins() -> Registry:
    registry = Registry.from_entry_points()
    if "text.slugify" not in registry:
        pytest.skip("acme-text is not installed")
    return registry


def cli(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHYARD_REDIS_URL": URL}
    return subprocess.run(
        [sys.executable, "-m", "switchyard", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_schedule_then_show(conn, workspace, plugins):
    done = cli("schedule", "text.slugify", "--data", '{"text": "Hello World"}', cwd=workspace)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert conn.lrange("rq:queue:words", 0, -1) == [job_id.encode()]
    with switchyard_rq.Consumer(conn, ["words"], registry=plugins) as worker:
        assert worker.run(max_jobs=1, idle_timeout=0.1) == 1
    shown = cli("jobs", "show", job_id, "--json", cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["status"] == "finished"
    assert info["action"] == "text.slugify"
    assert info["queue"] == "words"
    assert info["result"]["slug"] == "hello-world"


def test_schedule_wait_prints_the_result(conn, workspace, plugins):
    stop = threading.Event()
    worker = switchyard_rq.Consumer(conn, ["words"], registry=plugins)
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop, "idle_timeout": 0.1})
    thread.start()
    try:
        done = cli("schedule", "text.slugify", "--data", '{"text": "A B"}', "--wait", "20",
                   cwd=workspace)  # fmt: skip
    finally:
        stop.set()
        thread.join()
        worker.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["slug"] == "a-b"


def test_cli_errors_are_one_line(conn, workspace):
    bad = cli("schedule", "text.slugify", "--data", "{}", cwd=workspace)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: invalid input for text.slugify: text:")
    assert bad.stderr.count("\n") == 1
    assert conn.dbsize() == 0
    unknown = cli("schedule", "text.slugifi", cwd=workspace)
    assert unknown.returncode == 2
    assert "did you mean: text.slugify" in unknown.stderr
    missing = cli("jobs", "show", "nope", cwd=workspace)
    assert missing.returncode == 1
    assert (
        missing.stderr
        == "error: no job 'nope' in Redis (wrong id, or it expired: results are kept for a TTL)\n"
    )
    assert "Traceback" not in missing.stderr + bad.stderr + unknown.stderr


def test_failed_jobs_list_and_retry(conn, workspace, plugins):
    handle = switchyard_rq.schedule_action(
        "text.slugify", {"text": "x"}, registry=plugins, connection=conn
    )
    conn.hset(
        f"rq:job:{handle.id}", "data", b'["switchyard_rq.dispatch",null,["text.nope","{}"],{}]'
    )
    with switchyard_rq.Consumer(conn, ["words"], registry=plugins) as worker:
        worker.run(max_jobs=1, idle_timeout=0.1)
    listed = cli("jobs", "failed", "--json", cwd=workspace)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [handle.id]
    assert rows[0]["error"]["type"] == "UnknownActionError"
    assert (
        "UnknownActionError: unknown action 'text.nope'"
        in cli("jobs", "failed", cwd=workspace).stdout
    )
    retried = cli("jobs", "retry", handle.id, cwd=workspace)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == f"requeued {handle.id} on words"
    assert conn.lrange("rq:queue:words", 0, -1) == [handle.id.encode()]
    again = cli("jobs", "retry", handle.id, cwd=workspace)
    assert again.returncode == 1
    assert "is queued, not failed" in again.stderr


def test_routes(workspace, plugins):
    done = cli("routes", "--json", cwd=workspace)
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert table["rules"] == [{"pattern": "text.*", "queue": "words"}]
    assert table["default_queue"] == "main"
    assert "text.slugify" in table["queues"]["words"]
    text = cli("routes", cwd=workspace).stdout
    assert "text.*  ->  words" in text
    assert "default queue: main" in text
