"""``yard slice``: choosing plugins from entry-point metadata, and a slice that really runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from yard._errors import YardError
from yard._manifests import providers
from yard._slice import select
from yard._workspace import load_workspace

MAIN = Path(__file__).resolve().parents[3]
REDIS_URL = "redis://127.0.0.1:6379/14"  # a db of its own on the shared server; never flushed


def plugin_workspace(repo):
    """host consumes demo.plugins; p-a and p-b provide it, p-b needs lib; routing by queue."""
    repo.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n'
        '[tool.yard.slice]\nrouting = "tool.demo.routing"\ndefault-queue = "tool.demo.default"\n'
        '[tool.demo]\ndefault = "main"\n[tool.demo.routing]\n"b.slow" = "bulk"\n"a.*" = "fast"\n',
    )
    repo.member("packages/host", "host", extra='[tool.yard]\nconsumes = ["demo.plugins"]\n')
    repo.member("packages/lib", "lib")
    eps = '[project.entry-points."demo.plugins"]\n'
    repo.member("packages/p-a", "p-a", extra=eps + '"a.one" = "p_a:one"\n"a.two" = "p_a:two"\n')
    repo.member(
        "packages/p-b", "p-b", ("lib",), extra=eps + '"b.slow" = "p_b:slow"\n"b.fast" = "p_b:f"\n'
    )
    repo.commit("init")
    workspace = load_workspace(repo.path)
    return workspace, providers(workspace, "demo.plugins")


def choose(workspace, found, include=(), queues=()):
    return select(
        workspace,
        consumer="host",
        group="demo.plugins",
        providers=found,
        include=list(include),
        queues=list(queues),
    )


def test_globs_choose_plugins_and_their_dependency_closure(repo):
    workspace, found = plugin_workspace(repo)
    assert found == {
        "p-a": {"a.one": "p_a:one", "a.two": "p_a:two"},
        "p-b": {"b.slow": "p_b:slow", "b.fast": "p_b:f"},
    }
    one = choose(workspace, found, ["a.one"])
    assert one.plugins == ("p-a",)
    assert one.members == ("host", "p-a")
    assert one.chosen == ("a.one",)
    assert one.entry_points == ("a.one", "a.two")  # a distribution comes whole
    both = choose(workspace, found, ["a.*", "b.f*"])
    assert both.members == ("host", "lib", "p-a", "p-b")


def test_a_queue_chooses_what_the_declared_routing_sends_there(repo):
    workspace, found = plugin_workspace(repo)
    assert choose(workspace, found, queues=["bulk"]).chosen == ("b.slow",)
    assert choose(workspace, found, queues=["fast"]).plugins == ("p-a",)
    assert choose(workspace, found, queues=["main"]).chosen == ("b.fast",)  # the default queue
    mixed = choose(workspace, found, include=["a.one"], queues=["bulk"])
    assert mixed.plugins == ("p-a", "p-b")


def test_selection_errors_name_what_exists(repo):
    workspace, found = plugin_workspace(repo)
    with pytest.raises(YardError, match=r"--include 'c\.\*' matches no demo.plugins entry point"):
        choose(workspace, found, ["c.*"])
    with pytest.raises(YardError, match=r"--queue 'nosuch'.*\(queues: bulk, fast, main\)"):
        choose(workspace, found, queues=["nosuch"])
    with pytest.raises(YardError, match="choose what the slice serves"):
        choose(workspace, found)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--consumer", "nosuch", "--include", "a.*"], "no workspace member named 'nosuch'"),
        (["--consumer", "lib", "--include", "a.*"], "lib consumes no entry-point group"),
        (["--consumer", "host", "--include", "zz.*"], "--include 'zz.*' matches no"),
        (["--consumer", "host", "--include", "a.*", "--jobs", "-1"], "--jobs -1: expected"),
    ],
)
def test_bad_slice_input_is_one_line(repo, tmp_path, args, message):
    plugin_workspace(repo)
    result = repo.yard("slice", *args, "--out", str(tmp_path / "out"))
    assert result.code == 2
    assert result.err.startswith(f"yard: error: {message}")
    assert result.err.count("\n") == 1


def test_queue_without_declared_routing_is_an_error(repo, tmp_path):
    plugin_workspace(repo)
    repo.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    result = repo.yard("slice", "--consumer", "host", "--queue", "x", "--out", str(tmp_path))
    assert result.err.startswith("yard: error: --queue needs a routing table")


def _redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """The machine's Redis (db 14), else a redis-server of the test's own on a free port."""
    if _redis_up(6379):
        yield REDIS_URL
        return
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):  # a failure where services are required (conftest.py)
        pytest.skip("missing service: Redis (none at 127.0.0.1:6379, no redis-server to start)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not _redis_up(port):
            assert server.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.slow
def test_a_worker_slice_installs_into_a_fresh_venv_and_serves_only_its_actions(
    tmp_path, repo_at, redis_url
):
    """This workspace: a worker serving auth.* and geo.*, installed from the slice alone."""
    repo = repo_at(MAIN)
    out = tmp_path / "slice"
    result = repo.yard(
        "slice",
        "--consumer",
        "switchyard-worker",
        "--include",
        "auth.*,geo.*",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--json",
    )
    assert result.code == 0, result.err
    data = result.json()
    described = json.loads((out / "slice.json").read_text())
    assert described["plugins"] == ["acme-auth", "acme-geo"]
    served = described["entry_points"]
    declared = []
    for module in ("auth", "geo"):
        pyproject = tomllib.loads((MAIN / f"packages/modules/{module}/pyproject.toml").read_text())
        declared += pyproject["project"]["entry-points"]["switchyard.actions"]
    assert served == sorted(declared)
    wheels = sorted(p.name.split("-")[0] for p in out.glob("*.whl"))
    assert wheels == ["acme_auth", "acme_geo", "switchyard", "switchyard_rq", "switchyard_worker"]
    assert data["manifests"][0]["plugins"] == ["acme-auth", "acme-geo"]
    manifest = out / "switchyard-worker.manifest.json"

    venv = tmp_path / "venv"
    subprocess.run(["uv", "venv", "-q", "--python", shutil.which("python3") or "python3",
                    str(venv)], check=True)  # fmt: skip
    install = ["uv", "pip", "install", "-q", "--python", str(venv / "bin/python")]
    install += [str(p) for p in out.glob("*.whl")] + ["-c", str(out / "constraints.txt")]
    subprocess.run(install, check=True)
    listed = subprocess.run(
        ["uv", "pip", "list", "--python", str(venv / "bin/python"), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {p["name"] for p in json.loads(listed.stdout)}
    assert {n for n in installed if n.startswith("acme-")} == {"acme-auth", "acme-geo"}

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHYARD_", "VIRTUAL_ENV"))}
    env.update(SWITCHYARD_REDIS_URL=redis_url, PYTHONDONTWRITEBYTECODE="1")
    cwd = tmp_path  # outside the workspace: no project config, every action on "default"
    worker = subprocess.Popen(
        [str(venv / "bin/switchyard-worker"), "--manifest", str(manifest), "--max", "1"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        boot = worker.stdout.readline()
        assert f"{len(served)} actions (manifest {manifest}" in boot, boot
        call = [str(venv / "bin/switchyard"), "schedule", "geo.encode_geohash"]
        call += ["--data", '{"lat": 57.64911, "lon": 10.40744, "precision": 6}']
        done = subprocess.run(
            [*call, "--wait", "60"], cwd=cwd, env=env, capture_output=True, text=True, timeout=90
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["geohash"] == "u4pruy"
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0  # SIGTERM: a clean stop
    other = subprocess.run(
        [str(venv / "bin/switchyard"), "call", "billing.compute_totals", "--data", "{}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert other.returncode == 2
    assert "unknown action 'billing.compute_totals'" in other.stderr
    missing = subprocess.run([str(venv / "bin/python"), "-c", "import acme_billing"], cwd=cwd)
    assert missing.returncode == 1
