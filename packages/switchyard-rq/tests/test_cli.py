"""`switchyard schedule | jobs | routes`, run as a user would, with a real plugin (acme-text)."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
import threading

import pytest
from switchyard import Registry
from switchyard_rq_testkit import URL, env_without_redis  # type: ignore[import-not-found]

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


def cli(*args: str, cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m switchyard ARGS` in a real process (on db 7, unless ``env`` says otherwise)."""
    env = {**os.environ, "SWITCHYARD_REDIS_URL": URL} if env is None else env
    return subprocess.run(
        [sys.executable, "-m", "switchyard", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """`python -m switchyard ARGS` in this process (quicker): (exit code, stdout, stderr)."""
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", URL)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["switchyard", *args])
        with pytest.raises(SystemExit) as exited:
            runpy.run_module("switchyard", run_name="__main__", alter_sys=True)
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    return run


def test_schedule_then_show(conn, workspace, plugins, run_cli):
    code, out, err = run_cli("schedule", "text.slugify", "--data", '{"text": "Hello World"}')
    assert code == 0, err
    job_id = out.strip()
    assert conn.lrange("rq:queue:words", 0, -1) == [job_id.encode()]
    with switchyard_rq.Consumer(conn, ["words"], registry=plugins) as worker:
        assert worker.run(max_jobs=1, idle_timeout=0.1) == 1
    code, out, err = run_cli("jobs", "show", job_id, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["status"] == "finished"
    assert info["action"] == "text.slugify"
    assert info["queue"] == "words"
    assert info["result"]["slug"] == "hello-world"
    code, out, _ = run_cli("jobs", "show", job_id)
    assert re.search(r"^status +finished$", out, re.MULTILINE)


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


def test_cli_errors_are_one_line(conn, workspace, run_cli):
    bad = cli("schedule", "text.slugify", "--data", "{}", cwd=workspace)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: invalid input for text.slugify: text:")
    assert bad.stderr.count("\n") == 1
    assert conn.dbsize() == 0
    code, _, unknown = run_cli("schedule", "text.slugifi")
    assert code == 2
    assert "did you mean: text.slugify" in unknown
    code, _, missing = run_cli("jobs", "show", "nope")
    assert code == 1
    assert missing == (
        "error: no job 'nope' in Redis (wrong id, or it expired: results are kept for a TTL)\n"
    )
    code, _, not_json = run_cli("schedule", "text.slugify", "--data", "{oops")
    assert code == 1
    assert not_json.startswith("error: --data is not valid JSON")
    assert "Traceback" not in missing + bad.stderr + unknown


def test_failed_jobs_list_and_retry(conn, workspace, plugins, run_cli):
    handle = switchyard_rq.schedule_action(
        "text.slugify", {"text": "x"}, registry=plugins, connection=conn
    )
    conn.hset(
        f"rq:job:{handle.id}", "data", b'["switchyard_rq.dispatch",null,["text.nope","{}"],{}]'
    )
    with switchyard_rq.Consumer(conn, ["words"], registry=plugins) as worker:
        worker.run(max_jobs=1, idle_timeout=0.1)
    code, out, err = run_cli("jobs", "failed", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [handle.id]
    assert rows[0]["error"]["type"] == "UnknownActionError"
    code, out, _ = run_cli("jobs", "failed")
    assert "UnknownActionError: unknown action 'text.nope'" in out
    code, out, err = run_cli("jobs", "retry", handle.id)
    assert code == 0, err
    assert out.strip() == f"requeued {handle.id} on words"
    assert conn.lrange("rq:queue:words", 0, -1) == [handle.id.encode()]
    code, _, err = run_cli("jobs", "retry", handle.id)
    assert code == 1
    assert "is queued, not failed" in err


def test_routes(workspace, plugins, run_cli):
    code, out, err = run_cli("routes", "--json")
    assert code == 0, err
    table = json.loads(out)
    assert table["rules"] == [{"pattern": "text.*", "queue": "words"}]
    assert table["default_queue"] == "main"
    assert "text.slugify" in table["queues"]["words"]
    text = run_cli("routes")[1]
    assert "text.*  ->  words" in text
    assert "default queue: main" in text


def test_schedule_with_a_priority_and_every_option(conn, workspace, plugins, run_cli):
    code, out, err = run_cli(
        "schedule", "text.slugify", "--data", '{"text": "Urgent"}', "--priority", "high",
        "--key", "k-1", "--delay", "0",
    )  # fmt: skip
    assert code == 0, err
    job_id = out.strip()
    assert conn.lrange("switchyard:queue:words:high", 0, -1) == [job_id.encode()]
    assert conn.hget(f"rq:job:{job_id}", "sy_prio") == b"h"
    code, again, _ = run_cli("schedule", "text.slugify", "--data", '{"text": "x"}', "--key", "k-1")
    assert again.strip() == job_id  # the idempotency key
    code, _, err = run_cli("schedule", "text.slugify", "--priority", "urgent")
    assert code == 2
    assert "invalid choice: 'urgent'" in err
    assert err.count("\n") == 1


def test_doctor_and_debug_say_which_redis(conn, workspace, plugins):
    doctor = cli("doctor", cwd=workspace)
    assert f"redis: {URL} (SWITCHYARD_REDIS_URL), answers\n" in doctor.stdout
    debug = cli("--debug", "schedule", "text.slugify", "--data", '{"text": "x"}', cwd=workspace)
    assert debug.returncode == 0, debug.stderr
    assert f"debug: Redis: {URL} (SWITCHYARD_REDIS_URL)\n" in debug.stderr

    down = {**env_without_redis(), "SWITCHYARD_REDIS_URL": "redis://127.0.0.1:1/0"}
    doctor = cli("doctor", cwd=workspace, env=down)
    assert doctor.returncode == 1
    assert (
        "redis: redis://127.0.0.1:1/0 (SWITCHYARD_REDIS_URL), does not answer: connection refused"
        in doctor.stdout
    )
    assert (
        "problem: cannot reach Redis at redis://127.0.0.1:1/0 (SWITCHYARD_REDIS_URL): "
        "connection refused" in doctor.stdout
    )
    # nothing configured: the workspace's embedded server, which the doctor does not start
    doctor = cli("doctor", cwd=workspace, env=env_without_redis())
    assert (
        f"redis: embedded, under {workspace / '.switchyard'} (not running: it starts on first use)"
        in doctor.stdout
    ), doctor.stdout
    assert not (workspace / ".switchyard").exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ("{oops", "--data is not valid JSON: Expecting property name enclosed in double quotes "
                  "(line 1, column 2)"),
        ('{"text": "a",\n "x": }', "--data is not valid JSON: Expecting value (line 2, column 7)"),
        ("[1, 2]", "--data must be a JSON object of the action's input, not a list"),
        ("42", "--data must be a JSON object of the action's input, not a number"),
        ("null", "--data must be a JSON object of the action's input, not null"),
        ("{}", "invalid input for text.slugify: text: Field required"),
        ("@/nonexistent.json",
         "cannot read --data file /nonexistent.json: No such file or directory"),
    ],
)  # fmt: skip
def test_call_and_schedule_word_bad_input_alike(conn, workspace, plugins, run_cli, data, error):
    called = run_cli("call", "text.slugify", "--data", data)
    scheduled = run_cli("schedule", "text.slugify", "--data", data)
    assert called == scheduled == (1, "", f"error: {error}\n")
    assert conn.dbsize() == 0


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["schedule", "text.slugify", "--wait", "-1"],
         "argument --wait: must be a number of seconds from 0 to 86400, not '-1'"),
        (["schedule", "text.slugify", "--wait", "inf"],
         "argument --wait: must be a number of seconds from 0 to 86400, not 'inf'"),
        (["schedule", "text.slugify", "--delay", "1e300"],
         "argument --delay: must be a number of seconds from 0 to 31622400 (366 days), "
         "not '1e300'"),
        (["schedule", "text.slugify", "--delay", "nan"],
         "argument --delay: must be a number of seconds from 0 to 31622400 (366 days), "
         "not 'nan'"),
        (["jobs", "failed", "--limit", "-3"],
         "argument --limit: must be a whole number from 1 to 10000, not '-3'"),
        (["stats", "--window", "1e300"],
         "argument --window: must be a number of seconds above 0, up to 3600, not '1e300'"),
        (["top", "--interval", "0"],
         "argument --interval: must be a number of seconds above 0, up to 3600, not '0'"),
    ],
)  # fmt: skip
def test_absurd_numbers_are_refused_before_anything_runs(conn, workspace, run_cli, args, error):
    code, out, err = run_cli(*args)
    command = " ".join(args[:2] if args[0] == "jobs" else args[:1])
    assert (code, out, err) == (2, "", f"error: {error} (see `switchyard {command} --help`)\n")
    assert conn.dbsize() == 0


@pytest.mark.parametrize(
    ("args", "env_url", "error"),
    [
        (["stats", "--redis-url", "nope"], None, "bad Redis URL 'nope' (--redis-url): no scheme"),
        (["top", "--redis-url", "redis://127.0.0.1:99999/0"], None,
         "bad Redis URL 'redis://127.0.0.1:99999/0' (--redis-url): the port must be 1-65535, "
         "not '99999'"),
        (["jobs", "show", "x"], "redis://:pw@127.0.0.1:6379/abc",
         "bad Redis URL 'redis://:***@127.0.0.1:6379/abc' (SWITCHYARD_REDIS_URL): the database "
         "must be a number, as in /0, not 'abc'"),
        (["schedule", "text.slugify", "--data", '{"text": "a"}'], "http://x",
         "bad Redis URL 'http://x' (SWITCHYARD_REDIS_URL): unknown scheme 'http'"),
    ],
)  # fmt: skip
def test_a_bad_redis_url_is_one_line_naming_where_it_came_from(
    workspace, plugins, run_cli, monkeypatch, args, env_url, error
):
    if env_url is not None:
        monkeypatch.setenv("SWITCHYARD_REDIS_URL", env_url)
    code, out, err = run_cli(*args)
    forms = (
        "use redis://HOST:PORT/DB, rediss://HOST:PORT/DB, unix:///PATH?db=DB, "
        "redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...] or "
        "redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB] (rediss+ for TLS)"
    )
    assert (code, out, err) == (1, "", f"error: {error}; {forms}\n")
