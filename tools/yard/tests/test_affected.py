"""yard affected on real git repositories: which files changed, whose they are, and why."""

from __future__ import annotations

import subprocess

import pytest


def test_leaf_change_affects_only_the_leaf(chain):
    chain.write("packages/leaf/src/leaf/x.py", "X = 1\n")
    chain.commit("leaf")
    data = chain.affected("--base", "HEAD~1")
    assert data["changed_files"] == ["packages/leaf/src/leaf/x.py"]
    assert data["changed"] == ["leaf"]
    assert data["affected"] == ["leaf"]
    assert data["reasons"] == {"leaf": ["file packages/leaf/src/leaf/x.py"]}
    assert set(data) == {
        "base",
        "head",
        "merge_base",
        "changed_files",
        "changed",
        "affected",
        "reasons",
        "removed",
        "warnings",
    }
    assert data["warnings"] == data["removed"] == []


def test_base_change_affects_its_dependents_with_paths(chain):
    chain.write("packages/base/src/base/__init__.py", "VALUE = 2\n")
    data = chain.affected("--base", "main")
    assert data["head"] is None
    assert data["affected"] == ["base", "leaf", "mid"]
    assert data["reasons"]["mid"] == ["depends on base"]
    assert data["reasons"]["leaf"] == ["reaches base via mid"]
    names = chain.yard("affected", "--base", "main")
    assert names.out.split() == ["base", "leaf", "mid"]
    explained = chain.yard("affected", "--base", "main", "--explain").out
    assert "  leaf\n    reaches base via mid\n" in explained


def test_a_range_of_commits_on_a_branch(chain):
    chain.git("checkout", "-q", "-b", "feature")
    chain.write("packages/other/src/other/a.py", "A = 1\n")
    first = chain.commit("one")
    chain.write("packages/mid/src/mid/b.py", "B = 1\n")
    chain.commit("two")
    chain.git("checkout", "-q", "main")
    chain.write("packages/base/src/base/late.py", "L = 1\n")  # main moves on
    chain.commit("main moves")
    data = chain.affected("--base", "main", "--head", "feature")
    assert data["changed"] == ["mid", "other"]
    assert data["affected"] == ["leaf", "mid", "other"]
    only_first = chain.affected("--base", "main", "--head", first)
    assert only_first["affected"] == ["other"]


def test_head_mode_ignores_the_working_tree(chain):
    chain.write("packages/base/src/base/dirty.py", "D = 1\n")
    data = chain.affected("--base", "HEAD", "--head", "HEAD")
    assert data["changed_files"] == []
    assert data["affected"] == []
    assert chain.yard("affected", "--base", "HEAD", "--head", "HEAD", "--explain").out.endswith(
        "nothing is affected\n"
    )


def test_staged_unstaged_and_untracked_files_count(chain):
    chain.write("packages/base/src/base/staged.py", "S = 1\n")
    chain.git("add", "packages/base/src/base/staged.py")
    chain.write("packages/other/src/other/__init__.py", "# edited\n")
    chain.write("packages/leaf/src/leaf/new.py", "N = 1\n")
    chain.write("packages/leaf/src/leaf/__pycache__/new.cpython-311.pyc", "ignored")
    data = chain.affected("--base", "HEAD")
    assert data["changed_files"] == [
        "packages/base/src/base/staged.py",
        "packages/leaf/src/leaf/new.py",
        "packages/other/src/other/__init__.py",
    ]
    assert data["changed"] == ["base", "leaf", "other"]


def test_a_rename_across_members_counts_at_both_ends(chain):
    chain.write("packages/other/src/other/util.py", "def helper():\n    return 42\n" * 5)
    chain.commit("util")
    chain.git("mv", "packages/other/src/other/util.py", "packages/mid/src/mid/util.py")
    chain.commit("move")
    data = chain.affected("--base", "HEAD~1", "--head", "HEAD")
    assert data["changed_files"] == [
        "packages/mid/src/mid/util.py",
        "packages/other/src/other/util.py",
    ]
    assert data["changed"] == ["mid", "other"]


def test_a_deletion_counts(chain):
    chain.remove("packages/base/tests/test_base.py")
    data = chain.affected("--base", "HEAD")
    assert data["changed"] == ["base"]
    assert data["affected"] == ["base", "leaf", "mid"]


def test_files_outside_members_affect_nothing_but_global_inputs_affect_all(chain):
    chain.write("README.md", "# docs\n")
    chain.write("tests/test_e2e.py", "")
    assert chain.affected("--base", "HEAD")["affected"] == []
    chain.write("noxfile.py", "# sessions\n")
    data = chain.affected("--base", "HEAD")
    assert data["affected"] == ["base", "leaf", "mid", "other"]
    assert data["reasons"]["other"] == ["global input noxfile.py changed"]


def test_root_pyproject_and_python_version_are_global(chain):
    chain.write(".python-version", "3.11\n")
    assert len(chain.affected("--base", "HEAD")["affected"]) == 4
    chain.commit("pin")
    chain.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n# hi\n')
    assert len(chain.affected("--base", "HEAD")["affected"]) == 4


def test_configured_global_inputs(chain):
    chain.write(
        "pyproject.toml",
        """
        [tool.uv.workspace]
        members = ["packages/*"]

        [tool.yard.global-inputs]
        "docker/**" = ["Other"]
        "ci/*.yml" = "all"
        "noxfile.py" = []
        """,
    )
    chain.commit("config")
    chain.write("docker/worker/Dockerfile", "FROM python\n")
    chain.write("noxfile.py", "# not global any more\n")
    data = chain.affected("--base", "HEAD")
    assert data["affected"] == ["other"]
    assert data["reasons"]["other"] == ["global input docker/worker/Dockerfile changed"]
    chain.write("ci/main.yml", "on: push\n")
    assert len(chain.affected("--base", "HEAD")["affected"]) == 4


def test_global_inputs_naming_an_unknown_member(chain):
    chain.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n\n'
        '[tool.yard.global-inputs]\n"x/**" = ["ghost"]\n',
    )
    result = chain.yard("affected", "--base", "HEAD")
    assert result.code == 2
    assert "names 'ghost', which is not a workspace member" in result.err


def test_ignore_globs_narrow_member_inputs(chain):
    chain.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n\n[tool.yard]\nignore = ["**/*.md"]\n',
    )
    chain.member("packages/other", "other", extra='[tool.yard]\nignore = ["docs"]\n')
    chain.commit("config")
    chain.write("packages/base/README.md", "# base\n")
    chain.write("packages/other/docs/guide.txt", "words\n")
    assert chain.affected("--base", "HEAD")["affected"] == []
    chain.write("packages/other/docs.py", "D = 1\n")
    assert chain.affected("--base", "HEAD")["affected"] == ["other"]


def test_excluded_folders_are_not_members(chain):
    chain.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\nexclude = ["packages/other"]\n',
    )
    chain.commit("exclude")
    chain.write("packages/other/src/other/x.py", "X = 1\n")
    assert chain.affected("--base", "HEAD")["affected"] == []


def test_the_deepest_member_owns_a_file(repo):
    repo.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*", "packages/outer/plugins/*"]\n',
    )
    repo.member("packages/outer", "outer")
    repo.member("packages/outer/plugins/inner", "inner")
    repo.commit("init")
    repo.write("packages/outer/plugins/inner/src/inner/x.py", "X = 1\n")
    assert repo.affected("--base", "HEAD")["changed"] == ["inner"]
    repo.write("packages/outer/plugins/README.md", "plugins\n")
    assert repo.affected("--base", "HEAD")["changed"] == ["inner", "outer"]


def test_entry_point_consumers_are_affected_by_plugins(repo):
    repo.member("packages/worker", "worker", extra='[tool.yard]\nconsumes = ["acme.plugins"]\n')
    repo.member(
        "packages/auth", "auth", extra='[project.entry-points."acme.plugins"]\nauth = "auth"\n'
    )
    repo.member("packages/plain", "plain")
    repo.commit("init")
    repo.write("packages/auth/src/auth/__init__.py", "CHANGED = 1\n")
    data = repo.affected("--base", "HEAD")
    assert data["affected"] == ["auth", "worker"]
    assert data["reasons"]["worker"] == ["depends on auth (entry-point:acme.plugins)"]


def test_group_and_optional_edges_carry_changes(repo):
    repo.member("packages/testkit", "testkit")
    repo.member("packages/fmt", "fmt")
    repo.member("packages/a", "a", extra='[dependency-groups]\ndev = ["testkit"]\n')
    repo.member("packages/b", "b", extra='[project.optional-dependencies]\nx = ["fmt"]\n')
    repo.commit("init")
    repo.write("packages/testkit/src/testkit/__init__.py", "T = 1\n")
    repo.write("packages/fmt/src/fmt/__init__.py", "F = 1\n")
    data = repo.affected("--base", "HEAD")
    assert data["affected"] == ["a", "b", "fmt", "testkit"]
    assert data["reasons"]["a"] == ["depends on testkit (group:dev)"]
    assert data["reasons"]["b"] == ["depends on fmt (optional[x])"]


def test_shards_are_deterministic_balanced_and_cover_the_set(repo):
    for i in range(11):
        repo.member(f"packages/m{i:02d}", f"m{i:02d}")
    repo.commit("init")
    repo.write("noxfile.py", "# all\n")
    shards = [repo.affected("--base", "HEAD", "--shard", f"{i}/3")["affected"] for i in (1, 2, 3)]
    assert sorted(n for s in shards for n in s) == [f"m{i:02d}" for i in range(11)]
    assert sorted(len(s) for s in shards) == [3, 4, 4]
    assert shards[0] == repo.affected("--base", "HEAD", "--shard", "1/3")["affected"]
    matrix = repo.yard("affected", "--base", "HEAD", "--format", "github-matrix", "--shard", "3/3")
    assert matrix.json() == {"include": [{"member": n, "path": f"packages/{n}"} for n in shards[2]]}
    for bad in ("0/3", "4/3", "x", "1/0"):
        result = repo.yard("affected", "--base", "HEAD", "--shard", bad)
        assert result.code == 2
        assert result.err.startswith("yard: error: --shard")


def test_empty_github_matrix(chain):
    result = chain.yard("affected", "--base", "HEAD", "--format", "github-matrix")
    assert result.json() == {"include": []}


def test_bad_ref_is_one_line_exit_2(chain):
    for args in (["--base", "no-such-branch"], ["--base", "HEAD", "--head", "nope"]):
        result = chain.yard("affected", *args)
        assert result.code == 2
        assert result.err.count("\n") == 1
        assert "unknown git ref" in result.err
    assert "no-such-branch" in chain.yard("affected", "--base", "no-such-branch").err
    assert "'nope'" in chain.yard("affected", "--base", "HEAD", "--head", "nope").err


def test_not_a_git_repository(tmp_path, repo_at):
    (tmp_path / "pyproject.toml").write_text("[tool.uv.workspace]\nmembers = []\n")
    result = repo_at(tmp_path).yard("affected", "--base", "main")
    assert result.code == 2
    assert (
        result.err == f"yard: error: {tmp_path} is not inside a git repository; "
        "yard affected compares git refs\n"
    )


def test_shallow_clone_missing_the_merge_base(chain, tmp_path, repo_at):
    chain.git("checkout", "-q", "-b", "feature")
    for i in range(3):
        chain.write(f"packages/mid/src/mid/f{i}.py", "")
        chain.commit(f"f{i}")
    chain.git("checkout", "-q", "main")
    chain.write("packages/base/src/base/m.py", "")
    chain.commit("main")
    clone = tmp_path / "clone"
    subprocess.run(
        [
            "git",
            "clone",
            "-q",
            "--depth",
            "1",
            "--no-single-branch",
            f"file://{chain.path}",
            str(clone),
        ],
        check=True,
    )
    shallow = repo_at(clone)
    result = shallow.yard("affected", "--base", "origin/main", "--head", "origin/feature")
    assert result.code == 2
    assert result.err.startswith("yard: error: shallow clone: the merge base of origin/main")
    assert "--deepen" in result.err


def test_json_and_format_conflict(chain):
    result = chain.yard("affected", "--base", "HEAD", "--json", "--format", "names")
    assert result.code == 2


@pytest.mark.parametrize("fmt", ["names", "json", "github-matrix"])
def test_every_format_exits_0(chain, fmt):
    assert chain.yard("affected", "--base", "HEAD", "--format", fmt).code == 0


def test_a_workspace_below_the_git_top_level(tmp_path, repo_at):
    top = repo_at(tmp_path / "mono")
    top.path.mkdir()
    top.git("init", "-q", "-b", "main")
    top.write("python/pyproject.toml", '[tool.uv.workspace]\nmembers = ["libs/*"]\n')
    top.write("python/libs/a/pyproject.toml", '[project]\nname = "a"\nversion = "1"\n')
    top.write("python/uv.lock", "version = 1\nrevision = 3\n")
    top.write("web/app.js", "")
    top.commit("init")
    top.write("python/libs/a/new.py", "")
    top.write("web/other.js", "")
    top.write("python/uv.lock", "version = 1\nrevision = 4\n")
    ws = repo_at(top.path / "python")
    data = ws.affected("--base", "HEAD")
    assert data["changed_files"] == ["libs/a/new.py", "uv.lock"]
    assert data["affected"] == ["a"]
