"""``yard build`` with real ``uv build`` runs on small generated workspaces.

One cache folder is shared by the whole module: a workspace generated again with the same
content has the same keys (keys depend on content, not on where the workspace lives), so most
tests start from a warm cache and build only what they change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HATCH = (
    'requires-python = ">=3.11"\n'
    '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
)


def make_workspace(repo_at, path: Path, *, mid_pin: str = "base"):
    """base <- mid <- leaf, and other, buildable with hatchling, committed on main."""
    repo = repo_at(path)
    path.mkdir(parents=True)
    repo.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    repo.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\ndist/\n")
    repo.git("init", "-q", "-b", "main")
    sources = "[tool.uv.sources]\n{} = {{ workspace = true }}\n"
    repo.member("packages/base", "base", extra=HATCH)
    repo.member("packages/mid", "mid", (mid_pin,), extra=HATCH + sources.format("base"))
    repo.member("packages/leaf", "leaf", ("mid",), extra=HATCH + sources.format("mid"))
    repo.member("packages/other", "other", extra=HATCH)
    repo.commit("init")
    return repo


@pytest.fixture(scope="module")
def shared(tmp_path_factory, repo_at):
    """A warm cache: the standard workspace built once."""
    root = tmp_path_factory.mktemp("shared")
    repo = make_workspace(repo_at, root / "ws")
    cache = root / "cache"
    result = repo.yard("build", "--all", "--json", "--cache-dir", str(cache))
    assert result.code == 0, result.err
    return {"cache": cache, "cold": result.json(), "repo": repo}


@pytest.fixture(scope="module")
def repo_at(request):
    """conftest's Repo class, for module-scoped fixtures (its own fixture is per test)."""
    for plugin in request.config.pluginmanager.get_plugins():
        repo = getattr(plugin, "Repo", None)
        if repo is not None and hasattr(plugin, "GIT_ENV"):
            return repo
    raise RuntimeError("tools/yard/tests/conftest.py (Repo) is not loaded")


@pytest.fixture
def ws(tmp_path, repo_at):
    return make_workspace(repo_at, tmp_path / "ws")


def build(repo, cache, *args):
    return repo.yard("build", "--cache-dir", str(cache), *args)


def states(result):
    return {m["name"]: m["state"] for m in result.json()["members"]}


def fresh_cache(shared, tmp_path) -> Path:
    """An empty cache that reuses the shared one's backend pins (no index query)."""
    cache = tmp_path / "cache"
    shutil.copytree(shared["cache"] / "backends", cache / "backends")
    return cache


def test_a_cold_build_builds_every_member_dependencies_first(shared):
    data = shared["cold"]
    assert data["summary"]["built"] == 4
    assert data["summary"]["from_cache"] == 0
    names = [m["name"] for m in data["members"]]
    assert names.index("base") < names.index("mid") < names.index("leaf")
    out = Path(data["out"])
    assert out == shared["repo"].path / "dist"
    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert wheels == [f"{n}-0.1.0-py3-none-any.whl" for n in ("base", "leaf", "mid", "other")]
    with zipfile.ZipFile(out / "mid-0.1.0-py3-none-any.whl") as archive:
        assert "mid/__init__.py" in archive.namelist()


def test_nothing_changed_means_nothing_built(shared, ws, tmp_path):
    result = build(ws, shared["cache"], "--all", "--json", "--out", str(tmp_path / "out"))
    assert result.code == 0, result.err
    data = result.json()
    assert data["summary"]["built"] == 0
    assert data["summary"]["from_cache"] == 4
    cold = Path(shared["cold"]["out"]) / "leaf-0.1.0-py3-none-any.whl"
    assert (tmp_path / "out" / cold.name).read_bytes() == cold.read_bytes()
    assert (tmp_path / "out" / ".gitignore").read_text() == "*\n"  # like uv build's


def test_plain_output_has_progress_lines_and_the_final_table(shared, ws):
    result = build(ws, shared["cache"], "base", "other")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "yard build: 2 member(s)"
    assert any(line.endswith("from cache base") for line in lines)
    assert any(line.split() == ["member", "version", "result", "time"] for line in lines)
    assert lines[-1].startswith("built 0, from cache 2, skipped 0, failed 0 in ")


def test_a_leaf_change_rebuilds_exactly_the_leaf(shared, ws):
    ws.write("packages/leaf/src/leaf/__init__.py", "import mid\nLEAF = 2\n")
    result = build(ws, shared["cache"], "--all", "--json")
    assert result.code == 0, result.err
    assert states(result) == {"base": "cache", "mid": "cache", "leaf": "built", "other": "cache"}


def test_a_base_change_rebuilds_it_and_its_dependents_only(shared, ws):
    ws.write("packages/base/src/base/__init__.py", "BASE = 2\n")
    result = build(ws, shared["cache"], "--all", "--json")
    assert result.code == 0, result.err
    assert states(result) == {"base": "built", "mid": "built", "leaf": "built", "other": "cache"}
    # --affected selects the same three, now all in the cache
    affected = build(ws, shared["cache"], "--affected", "--base", "main", "--json")
    assert affected.code == 0, affected.err
    assert states(affected) == {"base": "cache", "mid": "cache", "leaf": "cache"}
    clean = build(ws, shared["cache"], "--affected", "--base", "HEAD", "--head", "HEAD")
    assert clean.code == 0, clean.err
    assert clean.out.strip() == "nothing to build: no member is affected"


def test_shards_split_the_selection(shared, ws):
    seen = []
    for shard in ("1/3", "2/3", "3/3"):
        result = build(ws, shared["cache"], "--all", "--shard", shard, "--json")
        assert result.code == 0, result.err
        seen.append(sorted(states(result)))
    assert seen == [["base", "other"], ["leaf"], ["mid"]]


def test_sdist_builds_both_and_caches_both(shared, ws, tmp_path):
    out = tmp_path / "out"
    first = build(ws, shared["cache"], "other", "--sdist", "--json", "--out", str(out))
    assert first.code == 0, first.err
    assert states(first) == {"other": "built"}  # the cached entry had no sdist yet
    assert sorted(p.name for p in out.glob("other-*")) == [
        "other-0.1.0-py3-none-any.whl",
        "other-0.1.0.tar.gz",
    ]
    again = build(ws, shared["cache"], "other", "--sdist", "--json", "--out", str(out))
    assert states(again) == {"other": "cache"}
    wheel_only = build(ws, shared["cache"], "other", "--json")
    assert states(wheel_only) == {"other": "cache"}


def test_a_failing_member_stops_its_dependents_only(shared, ws):
    path = ws.path / "packages/mid/pyproject.toml"
    path.write_text(path.read_text().replace('"hatchling.build"', '"hatchling.nosuch"'))
    ws.write("packages/other/src/other/__init__.py", "OTHER = 2\n")
    result = build(ws, shared["cache"], "--all", "--json", "-j", "2")
    assert result.code == 1
    data = result.json()
    assert states(result) == {"base": "cache", "mid": "failed", "leaf": "skipped", "other": "built"}
    leaf = next(m for m in data["members"] if m["name"] == "leaf")
    assert leaf["reason"] == "needs mid, which failed"
    assert "mid failed to build (uv build exited with" in result.err
    assert "  | " in result.err  # the log's tail
    assert "hatchling.nosuch" in result.err
    assert "skipped because they need mid: leaf" in result.err
    assert not (Path(data["out"]) / "leaf-0.1.0-py3-none-any.whl").exists()


def test_a_wheel_built_by_the_backend_directly_is_the_one_uv_build_makes(shared, ws, tmp_path):
    """yard runs the backend's PEP 517 hooks in its pinned backend venv instead of a ``uv
    build`` process per member; the wheel must be byte for byte what ``uv build`` gives."""
    ws.write("packages/other/src/other/__init__.py", "OTHER = 4\n")
    result = build(ws, shared["cache"], "other", "--json", "--out", str(tmp_path / "yard"))
    assert states(result) == {"other": "built"}
    subprocess.run(
        ["uv", "build", "--package", "other", "--wheel", "-q", "-o", str(tmp_path / "uv")],
        cwd=ws.path,
        check=True,
    )
    wheel = "other-0.1.0-py3-none-any.whl"
    assert (tmp_path / "yard" / wheel).read_bytes() == (tmp_path / "uv" / wheel).read_bytes()
    assert list((shared["cache"] / "backends").glob("*.venv/yard-ready"))


def test_a_dependent_built_alongside_a_failing_dependency_is_discarded(shared, ws):
    """With three jobs, mid, leaf and other all start at once (no build waits for a
    dependency's build); leaf's finished wheel is thrown away when mid fails."""
    from yard._cache import BuildCache

    path = ws.path / "packages/mid/pyproject.toml"
    path.write_text(path.read_text().replace('"hatchling.build"', '"hatchling.nosuch"'))
    ws.write("packages/other/src/other/__init__.py", "OTHER = 3\n")
    result = build(ws, shared["cache"], "--all", "--json", "-j", "3")
    assert result.code == 1
    data = result.json()
    assert states(result) == {"base": "cache", "mid": "failed", "leaf": "skipped", "other": "built"}
    leaf = next(m for m in data["members"] if m["name"] == "leaf")
    assert leaf["reason"] == "needs mid, which failed"
    assert leaf["seconds"] > 0  # it did build, in parallel with mid
    assert leaf["artifacts"] == []
    assert not (Path(data["out"]) / "leaf-0.1.0-py3-none-any.whl").exists()
    assert BuildCache(shared["cache"]).lookup(leaf["key"], (".whl",)) is None


def test_no_sources_checks_internal_pins_against_the_versions_built(shared, tmp_path, repo_at):
    bad = make_workspace(repo_at, tmp_path / "bad", mid_pin="base>=2")
    result = build(bad, shared["cache"], "mid", "--no-sources")
    assert result.code == 1
    assert "yard: error: mid 0.1.0 requires 'base>=2', but base 0.1.0 is being built" in result.err
    good = make_workspace(repo_at, tmp_path / "good", mid_pin="base>=0.1,<1")
    result = build(good, shared["cache"], "mid", "--no-sources")
    assert result.code == 0, result.err


def test_two_processes_share_one_cache(shared, tmp_path, ws):
    cache = fresh_cache(shared, tmp_path)
    for venv in (cache / "backends").glob("*.venv"):
        shutil.rmtree(venv)  # both processes make the backend venv at once: one of them wins
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "yard", "build", "base", "other", "--json"]
    cmd += ["--cache-dir", str(cache)]
    cmd += ["--root", str(ws.path), "-j", "2"]
    procs = [
        subprocess.Popen(
            [*cmd, "--out", str(tmp_path / f"out{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in (1, 2)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        summary = json.loads(out)["summary"]
        assert summary["built"] + summary["from_cache"] == 2
    for name in ("base", "other"):
        wheel = f"{name}-0.1.0-py3-none-any.whl"
        assert (tmp_path / "out1" / wheel).read_bytes() == (tmp_path / "out2" / wheel).read_bytes()
    entries = list((cache / "entries").glob("*/*/entry.json"))
    assert len(entries) == 2
    assert not list((cache / "entries").glob("*/*/.*.tmp"))
    assert len(list((cache / "backends").glob("*.venv/yard-ready"))) == 1
    assert not list((cache / "backends").glob("*.tmp"))
    again = build(ws, cache, "base", "other", "--json")
    assert again.json()["summary"]["from_cache"] == 2


def test_an_offline_build_missing_from_uvs_cache_runs_again_online(
    shared, ws, tmp_path, monkeypatch
):
    cache = fresh_cache(shared, tmp_path)
    for pins in (cache / "backends").glob("*.txt"):
        pins.with_suffix(".warm").touch()  # "these pins built before": yard tries --offline
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-uv-cache"))
    result = build(ws, cache, "other", "--json")
    assert result.code == 0, result.err
    assert states(result) == {"other": "built"}


def test_cache_info_and_prune(shared, tmp_path, ws):
    cache = tmp_path / "cache"
    shutil.copytree(shared["cache"], cache)
    info = ws.yard("cache", "info", "--json", "--cache-dir", str(cache))
    assert info.code == 0, info.err
    data = info.json()
    assert data["entries"] >= 4
    assert data["members"]["base"] >= 1
    assert data["size"] > 0
    text = ws.yard("cache", "info", "--cache-dir", str(cache))
    assert f"cache:   {cache}" in text.out
    kept = ws.yard("cache", "prune", "--max-size", "1G", "--cache-dir", str(cache))
    assert kept.out.startswith("pruned 0 entries")
    pruned = ws.yard("cache", "prune", "--max-size", "0", "--cache-dir", str(cache))
    assert pruned.out.startswith(f"pruned {data['entries']} entries")
    assert ws.yard("cache", "info", "--json", "--cache-dir", str(cache)).json()["entries"] == 0
    rebuilt = build(ws, cache, "base", "--json")
    assert states(rebuilt) == {"base": "built"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "no workspace member named 'nosuch' (members: base, leaf, mid, other)"),
        ([], "choose what to build: MEMBER ..., --all, or --affected --base REF"),
        (["--all", "base"], "choose what to build"),
        (["--all", "--jobs", "0"], "--jobs 0: expected a whole number of at least 1"),
        (["--all", "--jobs", "two"], "--jobs two: expected a whole number of at least 1"),
        (["--all", "--base", "main"], "--base and --head go with --affected"),
        (["--affected"], "--affected needs --base REF"),
        (["--affected", "--base", "nosuch"], "unknown git ref 'nosuch'"),
        (["--all", "--shard", "3/2"], "--shard 3/2: I must be between 1 and N"),
        (["--all", "--shard", "x"], "--shard x: expected I/N with whole numbers"),
    ],
)
def test_bad_build_input_is_one_line(ws, tmp_path, args, message):
    result = ws.yard("build", "--cache-dir", str(tmp_path / "c"), *args)
    assert result.code == 2
    assert result.err.startswith(f"yard: error: {message}")
    assert result.err.count("\n") == 1


def test_unwritable_out_and_cache_folders_are_one_line(ws, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = ws.yard("build", "base", "--out", str(blocker / "out"))
    assert result.code == 2
    assert result.err.startswith(f"yard: error: output folder {blocker / 'out'} is not writable")
    result = ws.yard("build", "base", "--cache-dir", str(blocker / "c"))
    assert result.err.startswith(f"yard: error: cache folder {blocker / 'c'} is not writable")
    result = ws.yard("cache", "prune", "--max-size", "lots", "--cache-dir", str(tmp_path))
    assert (
        result.err
        == "yard: error: --max-size 'lots': expected a size such as 500M, 2G or 1048576\n"
    )


MANIFEST_CODE = (
    "import json,sys,importlib.metadata as m;"
    "json.dump(sorted(e.name for e in m.entry_points(group='demo.plugins')),"
    "open(sys.argv[1],'w'))"
)


def test_a_consumer_gets_a_manifest_of_exactly_the_plugins_the_build_ships(
    shared, tmp_path, repo_at
):
    repo = repo_at(tmp_path / "plugins")
    repo.path.mkdir()
    command = json.dumps(["python", "-c", MANIFEST_CODE, "{output}"])
    repo.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n'
        '[tool.yard.manifest]\ngroup = "demo.plugins"\n'
        f'command = {command}\nfile = "{{consumer}}.plugins.json"\n',
    )
    repo.git("init", "-q", "-b", "main")
    repo.member("packages/host", "host", extra=HATCH + '[tool.yard]\nconsumes = ["demo.plugins"]\n')
    for name in ("p1", "p2"):
        eps = f'[project.entry-points."demo.plugins"]\n"{name}.run" = "{name}:run"\n'
        repo.member(f"packages/{name}", name, extra=HATCH + eps)
    repo.commit("init")
    cache = shared["cache"]
    result = build(repo, cache, "host", "p1", "--json")
    assert result.code == 0, result.err
    data = result.json()
    [manifest] = data["manifests"]
    assert manifest["plugins"] == ["p1"]
    assert manifest["state"] == "written"
    written = repo.path / "dist" / "host.plugins.json"
    assert json.loads(written.read_text()) == ["p1.run"]  # p2 is not shipped
    again = build(repo, cache, "host", "p1", "--json")
    assert again.json()["manifests"][0]["state"] == "cache"
    both = build(repo, cache, "--all", "--json")
    assert both.json()["manifests"][0]["plugins"] == ["p1", "p2"]
    assert json.loads(written.read_text()) == ["p1.run", "p2.run"]


def test_a_bad_manifest_command_fails_the_build_with_its_output(shared, tmp_path, repo_at):
    repo = repo_at(tmp_path / "broken")
    repo.path.mkdir()
    repo.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n'
        '[tool.yard.manifest]\ngroup = "demo.plugins"\n'
        'command = ["python", "-c", "raise SystemExit(\'no plugins here\')"]\n',
    )
    repo.git("init", "-q", "-b", "main")
    repo.member("packages/host", "host", extra=HATCH + '[tool.yard]\nconsumes = ["demo.plugins"]\n')
    repo.commit("init")
    result = build(repo, shared["cache"], "host")
    assert result.code == 1
    assert "yard: error: manifest for host: the manifest command python -c" in result.err
    assert "no plugins here" in result.err


def make_cyclic(repo_at, path: Path):
    """core's ``all`` extra lists plug, which depends on core (a run-time cycle uv accepts);
    app depends on plug; base is below them all."""
    repo = repo_at(path)
    path.mkdir(parents=True)
    repo.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    repo.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\ndist/\n")
    repo.git("init", "-q", "-b", "main")
    all_extra = '[project.optional-dependencies]\nall = ["plug"]\n'
    repo.member("packages/base", "base", extra=HATCH)
    repo.member("packages/core", "core", ("base",), extra=HATCH + all_extra)
    repo.member("packages/plug", "plug", ("core",), extra=HATCH)
    repo.member("packages/app", "app", ("plug",), extra=HATCH)
    repo.commit("init")
    return repo


def test_a_run_time_cycle_builds_in_one_step_and_rebuilds_together(shared, tmp_path, repo_at):
    repo = make_cyclic(repo_at, tmp_path / "cyclic")
    cache = fresh_cache(shared, tmp_path)
    result = build(repo, cache, "--all", "--json", "-j", "3")
    assert result.code == 0, result.err
    assert states(result) == dict.fromkeys(["base", "core", "plug", "app"], "built")
    names = [m["name"] for m in result.json()["members"]]
    assert names == ["base", "core", "plug", "app"]  # the cycle after base, before app
    repo.write("packages/plug/src/plug/__init__.py", "PLUG = 2\n")
    again = build(repo, cache, "--all", "--json")
    assert states(again) == {"base": "cache", "core": "built", "plug": "built", "app": "built"}


def test_a_failure_in_a_cycle_skips_the_rest_of_it_and_its_dependents(shared, tmp_path, repo_at):
    repo = make_cyclic(repo_at, tmp_path / "cyclic")
    path = repo.path / "packages/plug/pyproject.toml"
    path.write_text(path.read_text().replace('"hatchling.build"', '"hatchling.nosuch"'))
    result = build(repo, fresh_cache(shared, tmp_path), "--all", "--json", "-j", "3")
    assert result.code == 1
    assert states(result) == {
        "base": "built",
        "core": "skipped",
        "plug": "failed",
        "app": "skipped",
    }
    reasons = {m["name"]: m.get("reason") for m in result.json()["members"]}
    assert reasons["core"] == "needs plug, which failed"
    assert reasons["app"] == "needs plug, which failed"
