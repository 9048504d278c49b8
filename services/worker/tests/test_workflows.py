"""Workflows through real worker processes: a chain and a chord through a kill -9 of a pool
process mid-step, a failing step (cancel and keep), cancelling a workflow, bad workflows that
fail with one line before anything is enqueued, and every command-line form."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import switchyard
import switchyard_rq
from switchyard_rq import chain, chord, group, step
from switchyard_worker_longkit import (  # type: ignore[import-not-found]
    private_redis,
    wait_until,
    write_plugin,
)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """This module's own redis-server (instead of the machine's, shared and locked)."""
    with private_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def lj_dir(tmp_path_factory):
    return write_plugin(tmp_path_factory.mktemp("ljtest-plugin"))


@pytest.fixture
def lj(redis_db, lj_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(lj_dir))
    return switchyard.Registry.from_entry_points()


@pytest.fixture
def cli(redis_url, lj_dir, tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SWITCHYARD_REDIS_URL": redis_url, "PYTHONPATH": str(lj_dir)}
        return subprocess.run(
            [sys.executable, "-m", "switchyard", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    return run


def redis_db_url(conn) -> str:
    kwargs = conn.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


def kill_when_started(conn, marker: str, worker) -> int:
    wait_until(lambda: conn.exists(marker), 20, worker.text)
    pid = int(conn.get(marker))
    subprocess.run(["kill", "-9", str(pid)], check=True)
    return pid


def test_a_chain_survives_a_worker_killed_mid_step(start_worker, lj, lj_dir, redis_db):
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    handle = chain(
        step("lj.add", {"x": 1}),
        step("lj.add", {"id": "c2", "seconds": 1.5}),
        "lj.add",
    ).schedule(registry=lj)
    killed = kill_when_started(redis_db, "lj:started:c2", worker)
    assert handle.result(timeout=30).x == 4  # 1 + 1 + 1 + 1: each step once, in order
    assert handle.status == "succeeded"
    assert [s.status for s in handle.steps()] == ["finished"] * 3
    runs = [int(p) for p in redis_db.lrange("lj:runs:c2", 0, -1)]
    assert runs[0] == killed  # the killed run, then the one after recovery
    assert len(runs) == 2
    assert "was killed by SIGKILL" in worker.text()
    assert worker.stop() == 0


def test_a_chord_survives_a_worker_killed_mid_step(start_worker, lj, lj_dir, redis_db):
    worker = start_worker("--min", "2", "--max", "2", plugins=lj_dir)
    members = [step("lj.add", {"x": i, "id": f"g{i}", "seconds": 0.3}) for i in range(8)]
    handle = chord(group(members), "lj.total").schedule(registry=lj)
    assert handle.kind == "chord"
    kill_when_started(redis_db, "lj:started:g3", worker)
    assert handle.result(timeout=40).x == sum(i + 1 for i in range(8))
    steps = handle.steps()
    assert [s.stage for s in steps] == [0] * 8 + [1]
    assert {s.status for s in steps} == {"finished"}
    assert redis_db.llen("lj:runs:g3") == 2
    assert worker.stop() == 0


def test_a_step_retried_keeps_its_workflow_going(start_worker, lj, lj_dir, redis_db):
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    handle = chain(step("lj.add", {"x": 1}), "lj.flaky", "lj.add").schedule(registry=lj)
    assert handle.result(timeout=20).x == 4
    middle = switchyard_rq.JobHandle(handle.stages()[1][0])
    assert redis_db.hget(f"rq:job:{middle.id}", "sy_attempt") == b"2"
    assert worker.stop() == 0


@pytest.mark.parametrize("policy", ["cancel", "keep"])
def test_a_failed_step_fails_the_workflow(start_worker, lj, lj_dir, redis_db, policy):
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    handle = chain(
        group(
            step("lj.fail", {"x": 7}),
            step("lj.add", {"x": 1, "id": "sib", "seconds": 0.2}),
        ),
        "lj.total",
    ).schedule(registry=lj, on_failure=policy)
    with pytest.raises(switchyard_rq.WorkflowFailedError) as failed:
        handle.result(timeout=20)
    assert failed.value.status == "failed"
    assert failed.value.error.type == "ValueError"
    assert failed.value.error.message == "no 7"
    assert handle.failed_step == handle.stages()[0][0]
    states = {s.action: s.status for s in handle.steps()}
    assert states["lj.total"] == "canceled"  # a later stage never runs
    if policy == "cancel":  # its sibling, queued behind it on the one process, never runs
        assert states["lj.add"] == "canceled"
        assert not redis_db.exists("lj:runs:sib")
    else:  # kept: it runs to its end
        wait_until(lambda: handle.steps()[1].status == "finished", 20, worker.text)
    assert worker.stop() == 0


def test_cancelling_a_workflow_stops_its_running_step(start_worker, lj, lj_dir, redis_db, cli):
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    handle = chain(
        step("lj.steps", {"id": "w", "steps": 600, "pause": 0.05}), step("lj.steps", {"id": "w2"})
    ).schedule(registry=lj)
    wait_until(lambda: redis_db.exists("lj:started:w"), 20, worker.text)
    done = cli("workflows", "cancel", handle.id)
    assert done.returncode == 0, done.stderr
    with pytest.raises(switchyard_rq.WorkflowFailedError, match="canceled"):
        handle.result(timeout=20)
    wait_until(lambda: handle.steps()[0].status == "canceled", 20, worker.text)
    assert [s.status for s in handle.steps()] == ["canceled", "canceled"]
    again = cli("workflows", "cancel", handle.id)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: workflow: workflow {handle.id} is canceled: it has ended, there is nothing "
        "to cancel"
    ]
    assert worker.stop() == 0


BAD = [
    (
        ["--chain", "lj.add", "lj.words", "lj.add", "--data", '{"x": 1}'],
        "workflow step 3 (lj.add): its input needs field 'x', which the output of step 2 "
        "(lj.words) does not have (and its own data does not give)",
    ),
    (
        ["--chain", "lj.add", "lj.nope", "--data", '{"x": 1}'],
        "workflow step 2 (lj.nope): unknown action 'lj.nope'",
    ),
    (
        ["--chain", "lj.add", "lj.add", "--data", '{"x": "one"}'],
        "workflow step 1 (lj.add): invalid input for lj.add: x: Input should be a valid "
        "integer, unable to parse string as an integer",
    ),
    (
        ["--chain", "lj.add", "lj.total", "--data", '{"x": 1}'],
        "workflow step 2 (lj.total): its input needs field 'results', which the output of "
        "step 1 (lj.add) does not have (and its own data does not give)",
    ),
    (
        ["lj.add", "--chain", "lj.add"],
        "schedule takes one of NAME, --chain NAME... or --workflow FILE, not NAME and --chain",
    ),
    (["--chain", "lj.add", "--delay", "5"], "--delay is for one job"),
    (["lj.add", "--on-failure", "keep"], "--on-failure is for a workflow"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[str(n) for n in range(len(BAD))])
def test_a_bad_workflow_fails_with_one_line_before_anything_is_enqueued(
    cli, redis_db, args, message
):
    done = cli("schedule", *args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert redis_db.dbsize() == 0


def test_a_bad_workflow_from_python_raises_before_anything_is_enqueued(lj, redis_db):
    with pytest.raises(switchyard_rq.WorkflowError, match=r"^workflow step 2 \(lj.total\)"):
        chain(step("lj.add", {"x": 1}), "lj.total").schedule(registry=lj)
    with pytest.raises(switchyard_rq.WorkflowError, match="forbids"):
        chain(step("lj.add", {"x": 1}), step("lj.add", {"nope": 1})).validate(registry=lj)
    with pytest.raises(switchyard_rq.WorkflowError, match="on_failure must be"):
        chain(step("lj.add", {"x": 1})).schedule(registry=lj, on_failure="ignore")  # type: ignore[arg-type]
    with pytest.raises(switchyard_rq.WorkflowError, match="a group's members are single steps"):
        group(chain("lj.add"), "lj.add")
    assert redis_db.dbsize() == 0


BAD_FILES = [
    ("w.toml", "steps = 3\n", "'steps' must be a non-empty list"),
    ("w.toml", "[[steps]]\nactoin = 'lj.add'\n", "steps[1]: unknown key 'actoin'"),
    ("w.toml", "steps = [{action = 'lj.add'}]\nwhen = 1\n", "unknown key 'when'"),
    ("w.json", '{"steps": [{"group": []}]}', "'group' must be a non-empty list of steps"),
    ("w.json", '{"steps": [', "is not valid JSON"),
    ("w.toml", "steps = [\n", "is not valid TOML"),
    ("w.yaml", "steps: []", "name it .toml or .json"),
    ("w.toml", "on_failure = 'maybe'\nsteps = [{action = 'lj.add'}]\n", "on_failure must be"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_FILES)
def test_a_bad_workflow_file_fails_with_one_line(cli, redis_db, tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    done = cli("schedule", "--workflow", name)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert f"workflow file {name}" in lines[0]
    assert redis_db.dbsize() == 0
    missing = cli("schedule", "--workflow", "nowhere.toml")
    assert "cannot read workflow file nowhere.toml" in missing.stderr


def test_every_command_line_form(start_worker, lj, lj_dir, redis_db, cli, tmp_path):
    worker = start_worker("--min", "1", "--max", "1", plugins=lj_dir)
    # --chain, waiting for the result; options before and after
    done = cli("schedule", "--chain", "lj.add", "lj.add", "--data", '{"x": 1}', "--wait", "20")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"x": 3}
    done = cli("schedule", "--wait", "20", "--data", '{"x": 5}', "--chain", "lj.add", "lj.words")
    assert json.loads(done.stdout) == {"text": "6"}
    # --chain without --wait prints the id; workflows show (text and JSON, flag before and after)
    done = cli("schedule", "--on-failure", "keep", "--chain", "lj.add", "--data", '{"x": 1}')
    workflow_id = done.stdout.strip()
    handle = switchyard_rq.WorkflowHandle(workflow_id, registry=lj)
    assert handle.result(timeout=20).x == 2
    shown = cli("workflows", "show", workflow_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"workflow {workflow_id}  chain  succeeded"
    assert 'result: {"x": 2}' in shown.stdout
    for args in (("workflows", "show", "--json", workflow_id),
                 ("workflows", "show", workflow_id, "--json")):  # fmt: skip
        info = json.loads(cli(*args).stdout)
        assert info["status"] == "succeeded"
        assert info["result"] == {"x": 2}
        assert [s["action"] for s in info["steps"]] == ["lj.add"]
    # a workflow file, TOML and JSON: a chord; --data merged over the file's
    (tmp_path / "w.toml").write_text(
        "data = {x = 100}\n"
        '[[steps]]\ngroup = [{action = "lj.add", data = {x = 1}}, {action = "lj.add"}]\n'
        '[[steps]]\naction = "lj.total"\n'
        '[[steps]]\naction = "lj.add"\ndata = {add = 1000}\n'
    )
    done = cli("schedule", "--workflow", "w.toml", "--wait", "20")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"x": 2 + 101 + 1000}
    done = cli("schedule", "--workflow", "w.toml", "--data", '{"x": 0}', "--wait", "20")
    assert json.loads(done.stdout) == {"x": 2 + 1 + 1000}
    (tmp_path / "g.json").write_text(
        json.dumps(
            {"steps": [{"group": [{"action": "lj.add", "data": {"x": i}} for i in range(3)]}]}
        )
    )
    done = cli("schedule", "--workflow", "g.json", "--wait", "20")
    assert json.loads(done.stdout) == [{"x": 1}, {"x": 2}, {"x": 3}]
    # a failing workflow with --wait: its error, exit 1
    done = cli("schedule", "--chain", "lj.fail", "lj.add", "--data", '{"x": 3}', "--wait", "20")
    assert done.returncode == 1
    assert "failed" in done.stderr
    assert "ValueError: no 3" in done.stderr
    # show of an unknown workflow: one line
    missing = cli("workflows", "show", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "error: no workflow nope in Redis (never scheduled there, or expired after it ended)"
    ]
    # events filtered by queue, action and kind
    events = cli("events", "--queue", "default", "--action", "lj.w*", "--event", "succeeded",
                 "--json")  # fmt: skip
    assert [json.loads(line)["action"] for line in events.stdout.splitlines()] == ["lj.words"]
    text = cli("events", "--last", "3")
    assert len(text.stdout.splitlines()) == 3
    elsewhere = cli("events", "--last", "2", "--redis-url", redis_db_url(redis_db))
    assert len(elsewhere.stdout.splitlines()) == 2
    wrong = cli("events", "--redis-url", "http://nowhere")
    assert wrong.returncode != 0
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "--redis-url" in wrong.stderr
    bad = cli("events", "--event", "exploded")
    assert bad.stderr.strip().splitlines() == [
        "error: --event: unknown kind exploded (known: scheduled, started, progress, "
        "succeeded, failed, retried, cancelled)"
    ]
    assert worker.stop() == 0
