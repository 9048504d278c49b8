"""The real ``switchyard-worker`` command end to end: boot, jobs and results, health, recycling,
autoscaling, forged jobs, bad options. Real Redis (db 8), real processes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import switchyard_rq

WORKER = Path(sys.executable).parent / "switchyard-worker"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_boots_without_importing_plugins_and_runs_sync_and_async_actions(
    start_worker, registry, tmp_path, redis_url
):
    imports = tmp_path / "imports.log"
    worker = start_worker("--min", "1", "--max", "1", extra_env={"WTEST_IMPORT_LOG": str(imports)})

    line = worker.boot_line
    assert re.search(r"\d+ actions \(metadata\), queues default, ", line), line
    assert f"redis {redis_url} (SWITCHYARD_REDIS_URL)," in line
    assert re.search(r"booted in \d+\.\d ms \(registry \d+\.\d ms\)$", line), line
    worker.wait_children(1)
    assert not imports.exists(), "a plugin was imported at boot"

    echo = switchyard_rq.schedule_action("wtest.echo", {"text": "hi"}, registry=registry)
    aecho = switchyard_rq.schedule_action("wtest.aecho", {"text": "yo"}, registry=registry)
    assert echo.result(timeout=20).text == "hi"
    assert aecho.result(timeout=20).text == "yo from wtest.aecho attempt 1"
    # imported once, in the pool process, not in the supervisor
    assert imports.read_text().split() == [str(worker.children()[0])]
    assert worker.stop() == 0


def test_health_endpoints_report_registry_redis_and_children(start_worker, redis_db):
    port = free_port()
    worker = start_worker("--min", "2", "--max", "2", "--health-port", str(port))
    assert f"health http://127.0.0.1:{port}" in worker.boot_line
    worker.wait_ready(2, redis_db)
    deadline = time.monotonic() + 20  # the supervisor sees its processes serve on its next tick
    while (ready := get(port, "/readyz"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert get(port, "/healthz") == (200, {"status": "ok"})
    code, body = ready
    assert code == 200, body
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["children"]["detail"].startswith("2 serving, 2 alive")
    assert "actions from metadata" in body["checks"]["registry"]["detail"]
    assert get(port, "/nope")[0] == 404
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        metrics = dict(
            line.rsplit(" ", 1) for line in response.read().decode().splitlines() if line[0] != "#"
        )
    # values as numbers: the Prometheus client writes gauges as floats ("2.0")
    assert float(metrics["switchyard_worker_processes_serving"]) == 2
    assert float(metrics["switchyard_worker_redis_up"]) == 1
    assert float(metrics["switchyard_worker_processes_died_total"]) == 0
    assert worker.stop() == 0
    with pytest.raises(OSError):
        get(port, "/healthz")


def test_a_process_is_recycled_after_max_jobs_and_no_job_is_lost(start_worker, registry):
    worker = start_worker("--min", "1", "--max", "1", "--max-jobs", "5")
    calls = [("wtest.count", {"id": f"r{i}"}) for i in range(23)]
    handles = switchyard_rq.schedule_many(calls, registry=registry)
    assert [h.result(timeout=60).runs for h in handles] == [1] * 23
    # the 4th process leaves after its 5th result is stored: its exit may trail that result
    deadline = time.monotonic() + 20
    while worker.text().count("recycled after") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.text().count("recycled after") >= 4, worker.text()
    assert worker.stop() == 0


def test_a_backlog_scales_the_pool_up_then_idle_scales_it_down(start_worker, registry):
    worker = start_worker(
        "--min", "1", "--max", "2", "--scale-backlog", "5", "--scale-up-ticks", "2",
        "--scale-down-ticks", "5",
    )  # fmt: skip
    worker.wait_children(1)
    calls = [("wtest.count", {"id": f"s{i}", "seconds": 0.02}) for i in range(150)]
    handles = switchyard_rq.schedule_many(calls, registry=registry)
    worker.wait_log("scaling 1 -> 2 processes: backlog")
    for handle in handles:
        handle.result(timeout=60)
    worker.wait_log("scaling 2 -> 1 processes: idle for 5 ticks")
    assert worker.stop() == 0


def test_forged_and_malformed_jobs_fail_cleanly_and_the_worker_keeps_serving(
    start_worker, registry, redis_db, tmp_path
):
    worker = start_worker("--min", "1", "--max", "1")
    kids = worker.wait_children(1)
    pwned = tmp_path / "pwned"
    forged = {
        "not-dispatch": json.dumps(["os.system", None, [f"touch {pwned}"], {}]),
        # written by hand: the producer would refuse to schedule an action it cannot import
        "broken-plugin": json.dumps(["switchyard_rq.dispatch", None, ["wtest.broken", "{}"], {}]),
        "not-json": "\x80\x04\x95 pickle?",
        "wrong-shape": json.dumps({"func": "switchyard_rq.dispatch"}),
        "unknown-action": json.dumps(["switchyard_rq.dispatch", None, ["no.such", "{}"], {}]),
        "bad-input": json.dumps(["switchyard_rq.dispatch", None, ["wtest.echo", "{}"], {}]),
    }
    for job_id, data in forged.items():
        redis_db.hset(f"rq:job:{job_id}", mapping={"data": data, "status": "queued",
                                                   "origin": "default"})  # fmt: skip
        redis_db.rpush("rq:queue:default", job_id)
    redis_db.rpush("rq:queue:default", "no-hash-at-all")
    good = switchyard_rq.schedule_action("wtest.echo", {"text": "after"}, registry=registry)
    assert good.result(timeout=20).text == "after"

    for job_id in forged:
        handle = switchyard_rq.JobHandle.fetch(job_id)
        assert handle.status == "failed", job_id
        assert handle.error is not None, job_id
        assert handle.error.message, job_id
    assert (
        "unknown action 'no.such'" in switchyard_rq.JobHandle.fetch("unknown-action").error.message
    )
    broken = switchyard_rq.JobHandle.fetch("broken-plugin").error
    assert "wtest_broken is broken on purpose" in broken.message
    assert not pwned.exists()
    assert worker.children() == kids, "a forged job killed a worker process"
    assert worker.stop() == 0


def test_manifest_boot_reads_no_metadata_and_runs_jobs(
    start_worker, registry, tmp_path, clean_plugin_dir
):
    # written the way a deployment does it, by the `switchyard` command in the worker's environment
    manifest = tmp_path / "manifest.json"
    env = {**os.environ, "PYTHONPATH": str(clean_plugin_dir)}
    env.pop("SWITCHYARD_MANIFEST", None)
    subprocess.run(
        [str(WORKER.parent / "switchyard"), "manifest", "write", str(manifest)],
        env=env,
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    worker = start_worker(
        "--manifest", str(manifest), "--min", "1", "--max", "1", plugins=clean_plugin_dir
    )
    assert f"(manifest {manifest})" in worker.boot_line
    handle = switchyard_rq.schedule_action("wtest.echo", {"text": "m"}, registry=registry)
    assert handle.result(timeout=20).text == "m"
    assert worker.stop() == 0


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--manifest", "/nonexistent/manifest.json"], "/nonexistent/manifest.json", 1),
        (["--min", "0"], "--min: Input should be greater than or equal to 1", 2),
        (
            ["--redis-url", "http://x"],
            "--redis-url: must be a redis://, rediss:// or unix:// URL",
            2,
        ),
    ],
)
def test_bad_command_lines_fail_in_one_line(args, message, code, redis_db, plugin_dir):
    proc = subprocess.run(
        [str(WORKER), *args], capture_output=True, text=True, timeout=60, cwd=plugin_dir
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("switchyard-worker: error: ")
    assert message in proc.stderr


def test_a_redis_it_cannot_reach_makes_it_unready_and_its_password_never_shows(
    start_worker, redis_db
):
    port, nothing_there = free_port(), free_port()
    url = f"redis://nobody:s3cret-pw@127.0.0.1:{nothing_there}/8"
    worker = start_worker("--min", "1", "--max", "1", "--health-port", str(port), url=url)
    assert f"redis redis://nobody:***@127.0.0.1:{nothing_there}/8 (SWITCHYARD_REDIS_URL)," in (
        worker.boot_line
    )
    assert get(port, "/healthz")[0] == 200
    code, body = get(port, "/readyz")
    assert code == 503
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["registry"]["ok"] is True
    assert worker.stop() == 0
    assert "s3cret-pw" not in worker.boot_line + worker.text()


def test_refused_credentials_stop_it_at_start_in_one_line(redis_db, redis_url, plugin_dir):
    url = redis_url.replace("redis://", "redis://nobody:s3cret-pw@")  # no such ACL user
    proc = subprocess.run(
        [str(WORKER), "--min", "1", "--max", "1", "--redis-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=plugin_dir,
    )
    assert proc.returncode == 1, proc.stderr
    shown = redis_url.replace("redis://", "redis://nobody:***@")
    assert proc.stderr.startswith(
        f"switchyard-worker: error: Redis refused the credentials for {shown}: "
    ), proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "s3cret-pw" not in proc.stdout + proc.stderr


def test_a_health_port_in_use_is_a_one_line_error(redis_db, plugin_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [str(WORKER), "--health-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=plugin_dir,
        )
    assert proc.returncode == 1
    assert proc.stderr == (
        f"switchyard-worker: error: --health-port: cannot listen on 127.0.0.1:{port}: "
        "Address already in use\n"
    )


def test_debug_shows_the_traceback_behind_a_one_line_error(redis_db, plugin_dir):
    args = [str(WORKER), "--manifest", "/nonexistent/manifest.json"]
    quiet = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=plugin_dir)
    loud = subprocess.run(
        [*args, "--debug"], capture_output=True, text=True, timeout=60, cwd=plugin_dir
    )
    assert "Traceback" not in quiet.stderr
    assert loud.returncode != 0
    assert "Traceback (most recent call last)" in loud.stderr
    assert "ManifestError" in loud.stderr


def test_queues_limits_what_a_worker_takes(start_worker, registry, redis_db, tmp_path):
    # this process routes wtest.aecho to "elsewhere" (the project config of its cwd, tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.switchyard.routing]\n"wtest.aecho" = "elsewhere"\n'
    )
    worker = start_worker("--queues", "elsewhere", "--min", "1", "--max", "1")
    assert "queues elsewhere," in worker.boot_line
    worker.wait_ready(1, redis_db)
    handle = switchyard_rq.schedule_action("wtest.echo", {"text": "x"}, registry=registry)
    mine = switchyard_rq.schedule_action("wtest.aecho", {"text": "y"}, registry=registry)
    # the job of its own queue, scheduled after the other, ran: the other was not for it
    assert mine.result(timeout=20).text == "y from wtest.aecho attempt 1"
    assert handle.status == "queued"
    assert redis_db.llen("rq:queue:default") == 1
    assert worker.stop() == 0


def test_a_worker_waiting_for_redis_says_so_at_once_and_on_readyz(
    start_worker, redis_db, redis_server_exe, tmp_path
):
    port, nothing_there = free_port(), free_port()
    url = f"redis://127.0.0.1:{nothing_there}/0"
    waiting = f"waiting for Redis at {url}: connection refused"
    worker = start_worker("--min", "1", "--max", "1", "--health-port", str(port), url=url)
    assert worker.boot_line.endswith(f"; not ready: {waiting}"), worker.boot_line
    worker.wait_log(f"not ready: {waiting}; retrying until it answers", timeout=2)
    asked = time.monotonic()
    code, body = get(port, "/readyz")
    assert time.monotonic() - asked < 2  # no client retries behind a probe
    assert code == 503
    assert body["checks"]["redis"] == {"ok": False, "detail": waiting}
    if redis_server_exe is None:
        pytest.skip("needs a redis-server binary to start the Redis it waits for")
    server = subprocess.Popen(
        [redis_server_exe, "--port", str(nothing_there), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while get(port, "/readyz")[0] != 200:  # it kept trying: serving once Redis answers
            assert time.monotonic() < deadline, worker.text()
            time.sleep(0.1)
        worker.wait_log(f"ready: Redis at {url} answers")
        assert worker.stop() == 0
    finally:
        server.terminate()
        server.wait(10)
