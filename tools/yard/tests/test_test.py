"""``yard test`` on a small locked workspace, with real ``uv run`` and pytest runs.

Each member's test notes in ``$YARD_TEST_MARKS`` that it ran, so "cached" is checked against
what really ran, not only against what yard says.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def marks(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("YARD_TEST_MARKS", str(folder))
    return folder


def ran(marks: Path) -> list[str]:
    """The members whose tests ran since the last call (and forget them)."""
    names = sorted(p.name for p in marks.iterdir())
    for p in marks.iterdir():
        p.unlink()
    return names


def ytest(repo, cache, *args):
    argv = ["test", "--root", str(repo.path), "--json", "--cache-dir", str(cache), *args]
    result = repo.yard(*argv, root=False)
    assert result.code in (0, 1), result.err
    return result


def how(result) -> dict[str, str]:
    """member -> result/source, e.g. {"base": "passed/run", "mid": "passed/local"}."""
    return {m["name"]: f"{m['result']}/{m['source']}" for m in result.json()["members"]}


@pytest.fixture(scope="module")
def warm(test_origin, tmp_path_factory):
    """A cache holding passes of the workspace as committed (and the backend pins)."""
    from yard._cli import main

    cache = tmp_path_factory.mktemp("warm") / "cache"
    code = main(["test", "--root", str(test_origin), "--cache-dir", str(cache), "--json"])
    assert code == 0
    shutil.rmtree(test_origin / ".yard")
    return cache


def copy_cache(warm: Path, tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    shutil.copytree(warm, cache)
    return cache


def test_a_cold_run_runs_every_member_then_an_unchanged_one_runs_nothing(clone, marks, tmp_path):
    repo = clone()
    cache = tmp_path / "cache"
    first = ytest(repo, cache)
    assert first.code == 0, first.err
    assert how(first) == dict.fromkeys(("base", "mid", "leaf", "other"), "passed/run")
    assert ran(marks) == ["base", "leaf", "mid", "other"]
    data = first.json()
    assert data["summary"]["run"] == 4
    names = [m["name"] for m in data["members"]]
    assert names.index("base") < names.index("mid") < names.index("leaf")  # deps first
    assert all(m["summary"] == "1 passed" or "1 passed in" in m["summary"] for m in data["members"])
    again = ytest(repo, cache)
    assert how(again) == dict.fromkeys(("base", "mid", "leaf", "other"), "passed/local")
    assert ran(marks) == []
    assert again.json()["summary"]["cached"] == 4


def test_the_plain_output_replays_cached_summaries_and_ends_with_the_table(
    clone, marks, warm, tmp_path
):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    repo.write("packages/other/src/other/__init__.py", "VALUE = 1  # changed\n")
    result = repo.yard("test", "--cache-dir", str(cache), "--jobs", "1")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "yard test: 4 member(s)"
    cached = [line for line in lines if "] cached " in line]
    assert len(cached) == 3
    assert any("cached mid: 1 passed in " in line for line in cached)
    assert all(line.endswith("(from the local cache)") for line in cached)
    assert any(line.endswith("testing other") for line in lines)
    assert any("passed other (" in line for line in lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("member "))
    assert lines[header].split() == ["member", "result", "time", "cached", "or", "run", "summary"]
    rows = {line.split()[0]: line.split() for line in lines[header + 1 : -1]}
    assert rows["base"][1:4] == ["passed", "-", "cached"]
    assert rows["other"][1:5] == ["passed", rows["other"][2], "s", "run"]
    assert lines[-1].startswith("passed 4, failed 0, no tests 0; run 1, cached 3 (0 from the")
    assert ran(marks) == ["other"]


def test_a_base_change_reruns_it_and_its_dependents_a_leaf_change_only_the_leaf(
    clone, marks, warm, tmp_path
):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    repo.write("packages/leaf/src/leaf/__init__.py", "import mid\nVALUE = 1\nLEAF = 2\n")
    leaf = ytest(repo, cache)
    assert how(leaf) == {
        "base": "passed/local",
        "mid": "passed/local",
        "leaf": "passed/run",
        "other": "passed/local",
    }
    assert ran(marks) == ["leaf"]
    repo.write("packages/base/src/base/__init__.py", "VALUE = 1\nBASE = 2\n")
    base = ytest(repo, cache)
    assert how(base) == {
        "base": "passed/run",
        "mid": "passed/run",
        "leaf": "passed/run",
        "other": "passed/local",
    }
    assert ran(marks) == ["base", "leaf", "mid"]
    repo.commit("base and leaf")
    affected = ytest(repo, cache, "--affected", "--base", "HEAD~1")
    assert how(affected) == dict.fromkeys(("base", "mid", "leaf"), "passed/local")
    assert ran(marks) == []


def test_a_failure_is_never_cached_and_does_not_stop_the_others(clone, marks, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    repo.write("packages/base/src/base/__init__.py", "VALUE = 2\n")
    first = ytest(repo, cache)
    assert first.code == 1
    assert first.err == "yard: error: tests failed for: base\n"
    assert how(first) == {  # mid and leaf ran too (base changed), and pass: their own tests
        "base": "failed/run",
        "mid": "passed/run",
        "leaf": "passed/run",
        "other": "passed/local",
    }
    members = {m["name"]: m for m in first.json()["members"]}
    assert members["base"]["exit_code"] == 1
    assert members["base"]["summary"].startswith("1 failed")
    ran(marks)
    second = ytest(repo, cache, "base")
    assert how(second) == {"base": "failed/run"}
    assert ran(marks) == ["base"]
    from yard._cache import BuildCache

    assert BuildCache(cache).lookup(members["base"]["key"], ("output.log",)) is None


def test_a_failures_output_is_shown_before_the_table(clone, marks, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    repo.write("packages/other/src/other/__init__.py", "VALUE = 3\n")
    result = repo.yard("test", "other", "--cache-dir", str(cache))
    assert result.code == 1
    assert "---- other: tests failed (exit status 1); the end of " in result.out
    assert "assert 3 == 1" in result.out
    assert result.out.rstrip().splitlines()[-1].startswith("passed 0, failed 1")


def test_no_cache_runs_everything_and_stores_nothing(clone, marks, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    before = repo.yard("cache", "info", "--json", "--cache-dir", str(cache)).json()
    result = ytest(repo, cache, "--no-cache", "base", "other")
    assert how(result) == {"base": "passed/run", "other": "passed/run"}
    assert ran(marks) == ["base", "other"]
    after = repo.yard("cache", "info", "--json", "--cache-dir", str(cache)).json()
    assert after["entries"] == before["entries"]
    assert after["kinds"]["test"] == 4


def test_pytest_arguments_go_to_every_member_and_into_the_key(clone, marks, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    quiet = ytest(repo, cache, "base", "--", "-q", "-k", "base")
    assert how(quiet) == {"base": "passed/run"}
    assert ran(marks) == ["base"]
    nothing = ytest(repo, cache, "other", "--", "-k", "nosuchtest")
    assert how(nothing) == {"other": "passed/run"}  # pytest's 5: collected nothing
    assert "deselected" in nothing.json()["members"][0]["summary"]
    again = ytest(repo, cache, "base", "--", "-q", "-k", "base")
    assert how(again) == {"base": "passed/local"}


def dry(repo, cache, *args):
    result = ytest(repo, cache, "--dry-run", *args)
    return {m["name"]: m["key"] for m in result.json()["members"]}


def test_dry_run_reports_and_runs_nothing(clone, marks, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    repo.write("packages/mid/src/mid/__init__.py", "import base\nVALUE = 1\nMID = 2\n")
    result = ytest(repo, cache, "--dry-run")
    assert how(result) == {
        "base": "passed/local",
        "mid": "not run/would run",
        "leaf": "not run/would run",
        "other": "passed/local",
    }
    assert ran(marks) == []


def test_the_key_covers_test_files_even_those_the_build_key_ignores(clone, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    path = repo.path / "packages/other/pyproject.toml"
    path.write_text(path.read_text() + '[tool.yard]\nignore = ["tests"]\n')
    before = dry(repo, cache)
    repo.write("packages/other/tests/conftest.py", "import pytest\n")
    after = dry(repo, cache)
    assert after["other"] != before["other"]
    assert {n: k for n, k in after.items() if n != "other"} == {
        n: k for n, k in before.items() if n != "other"
    }


def test_the_key_covers_declared_env_inputs_and_global_inputs(clone, warm, tmp_path, monkeypatch):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    path = repo.path / "packages/leaf/pyproject.toml"
    path.write_text(
        path.read_text() + '[tool.yard.test]\nenv = ["LEAF_MODE"]\ninputs = ["fixtures/**"]\n'
    )
    repo.write("fixtures/data.txt", "one\n")
    start = dry(repo, cache)
    monkeypatch.setenv("UNDECLARED", "x")
    assert dry(repo, cache) == start
    monkeypatch.setenv("LEAF_MODE", "fast")
    env = dry(repo, cache)
    assert env["leaf"] != start["leaf"]
    assert {n for n in env if env[n] != start[n]} == {"leaf"}
    repo.write("fixtures/data.txt", "two\n")
    data = dry(repo, cache)
    assert {n for n in data if data[n] != env[n]} == {"leaf"}
    repo.write(".python-version", "3.11\n")  # a global input of every member
    everything = dry(repo, cache)
    assert all(everything[n] != data[n] for n in data)


def test_the_key_covers_members_and_packages_of_the_dependency_groups(clone, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    path = repo.path / "packages/other/pyproject.toml"
    path.write_text(path.read_text() + '[dependency-groups]\ndev = ["base"]\n')
    before = dry(repo, cache)
    repo.write("packages/base/README.md", "a change to base\n")
    after = dry(repo, cache)
    assert {n for n in after if after[n] != before[n]} == {"base", "mid", "leaf", "other"}


def test_a_member_without_tests_says_so(clone, marks, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    shutil.rmtree(repo.path / "packages/other/tests")
    result = ytest(repo, cache, "other")
    assert how(result) == {"other": "no tests/-"}
    assert result.json()["members"][0]["summary"] == "no tests/ folder"


def test_cache_info_counts_test_results(clone, warm, tmp_path):
    repo = clone()
    info = repo.yard("cache", "info", "--json", "--cache-dir", str(warm)).json()
    assert info["kinds"] == {"build": 0, "test": 4}
    assert info["members"] == {"base": 1, "leaf": 1, "mid": 1, "other": 1}


@pytest.mark.parametrize(
    "args",
    [
        ["--jobs", "1", "base"],
        ["base", "--jobs", "1"],
        ["-j", "1", "base", "--json"],
    ],
)
def test_options_go_before_or_after_the_members(clone, warm, tmp_path, args):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    result = repo.yard("test", "--cache-dir", str(cache), *args)
    assert result.code == 0, result.err
    assert "base" in result.out


def test_root_and_debug_go_before_or_after_the_command(clone, warm, tmp_path, monkeypatch):
    from yard._cli import main

    repo = clone()
    cache = copy_cache(warm, tmp_path)
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["test", "--root", str(repo.path), "base", "--cache-dir", str(cache), "--json"],
        ["--root", str(repo.path), "test", "base", "--cache-dir", str(cache), "--json"],
        ["--debug", "test", "--root", str(repo.path), "--json", "--cache-dir", str(cache), "base"],
        ["test", "--debug", "--root", str(repo.path), "--json", "--cache-dir", str(cache), "base"],
    ):
        assert main(argv) == 0, argv


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "no workspace member named 'nosuch' (members: base, leaf, mid, other)"),
        (["--jobs", "0"], "--jobs 0: expected a whole number of at least 1"),
        (["-j", "many"], "--jobs many: expected a whole number of at least 1"),
        (["--base", "main"], "--base and --head go with --affected"),
        (["--affected"], "--affected needs --base REF"),
        (["--affected", "--base", "nosuch"], "unknown git ref 'nosuch'"),
        (["--affected", "--base", "main", "base"], "give members or --affected, not both"),
        (["--remote-cache", "ftp://cache"], "--remote-cache: 'ftp://cache' is not a remote cache"),
        (["--remote-cache", "http://h:port"], "--remote-cache: 'http://h:port' is not a remote"),
        (["--remote-cache", "https://u:pw@h/x?q"], "--remote-cache: 'https://***@h/x?q' is not"),
        (["--nosuch"], "unrecognized arguments: --nosuch"),
    ],
)
def test_bad_test_input_is_one_line(clone, tmp_path, args, message):
    repo = clone()
    result = repo.yard("test", "--cache-dir", str(tmp_path / "c"), *args)
    assert result.code == 2
    assert result.err.startswith(f"yard: error: {message}"), result.err
    assert result.err.count("\n") == 1


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('[tool.yard.test]\nenv = "X"\n', "pyproject.toml: tool.yard.test.env must be a list"),
        ('[tool.yard.test]\nenv = ["1X"]\n', "tool.yard.test.env: '1X' is not a variable name"),
        ("[tool.yard.test]\nrunner = 1\n", "[tool.yard.test]: unknown setting 'runner'"),
        ('[tool.yard.cache]\nremote = "nope"\n', "tool.yard.cache.remote: 'nope' is not a"),
        ("[tool.yard.cache]\ntimeout = 0\n", "tool.yard.cache.timeout 0: expected seconds"),
        ('[tool.yard.cache]\nread-only = "yes"\n', "tool.yard.cache.read-only must be true"),
        ("[tool.yard.cache]\nremotes = 1\n", "[tool.yard.cache]: unknown setting 'remotes'"),
    ],
)
def test_bad_settings_are_one_line(clone, tmp_path, setting, message):
    repo = clone()
    path = repo.path / "pyproject.toml"
    path.write_text(path.read_text() + setting)
    result = repo.yard("test", "--cache-dir", str(tmp_path / "c"), "base")
    assert result.code == 2
    assert message in result.err, result.err
    assert result.err.count("\n") == 1


def test_a_workspace_without_pytest_in_its_lock_is_one_line(repo, tmp_path):
    repo.member("packages/a", "a")
    repo.write("uv.lock", 'version = 1\nrequires-python = ">=3.11"\n')
    repo.commit()
    result = repo.yard("test", "--cache-dir", str(tmp_path / "c"))
    assert result.code == 2
    assert result.err.startswith("yard: error: uv.lock does not lock pytest, which yard test runs")


def test_json_lists_the_summary_and_each_member(clone, warm, tmp_path):
    repo = clone()
    cache = copy_cache(warm, tmp_path)
    data = json.loads(ytest(repo, cache, "mid").out)
    assert data["ok"] is True
    assert data["summary"]["cached"] == 1
    assert data["summary"]["saved_seconds"] > 0
    [mid] = data["members"]
    assert set(mid) >= {"name", "version", "result", "source", "seconds", "key", "summary", "log"}
    assert Path(mid["log"]).read_text().strip()
