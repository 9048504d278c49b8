"""What a change affects, read in the workspace as of each end of the range: members added and
removed between the base and the head, whatever the working tree holds."""

from __future__ import annotations

import shutil

import pytest
from yard import load_workspace


@pytest.fixture
def history(patterns, tmp_path, repo_at):
    """A copy of the generated history (base, head, later; locked by the real uv), checked
    out at ``later``: a, c, e, z, where the head had a, c, d, z and the base a, b, c, z."""
    repo = repo_at(tmp_path / "history")
    shutil.copytree(patterns["history"].path, repo.path)
    repo.revs = dict(patterns["history"].revs)
    return repo


def test_a_range_is_read_as_of_its_head_not_the_working_tree(history):
    data = history.affected("--base", history.revs["base"], "--head", history.revs["head"])
    assert data["removed"] == ["b"]
    assert data["affected"] == ["c", "d"]  # d: added at the head, gone from the working tree
    assert data["reasons"]["c"] == [
        "file packages/c/pyproject.toml",
        "uv.lock: its own locked entry changed",  # it needs a now, not b
        "depended on b, which left the workspace",
    ]
    assert data["reasons"]["d"] == [
        "file packages/d/pyproject.toml",
        "file packages/d/src/d/__init__.py",
        "file packages/d/tests/test_d.py",
    ]
    assert "e" not in data["reasons"]  # only in the working tree
    assert not any("uv.lock: b " in r for rs in data["reasons"].values() for r in rs)
    text = history.yard(
        "affected", "--base", history.revs["base"], "--head", history.revs["head"], "--explain"
    ).out
    assert "removed from the workspace: b\n" in text


def test_github_matrix_paths_are_the_heads(history):
    out = history.yard(
        "affected",
        "--base",
        history.revs["base"],
        "--head",
        history.revs["head"],
        "--format",
        "github-matrix",
    )
    assert out.json() == {
        "include": [{"member": "c", "path": "packages/c"}, {"member": "d", "path": "packages/d"}]
    }


def test_the_later_range_removes_what_the_head_added(history):
    data = history.affected("--base", history.revs["head"], "--head", history.revs["later"])
    assert data["removed"] == ["d"]
    assert data["affected"] == ["e"]


def test_a_member_removed_in_the_working_tree_affects_its_dependents(history):
    history.git("checkout", "-q", history.revs["base"])
    shutil.rmtree(history.path / "packages/b")
    data = history.affected("--base", "HEAD")
    assert data["removed"] == ["b"]
    assert data["affected"] == ["c"]
    assert data["reasons"]["c"] == ["depended on b, which left the workspace"]


def test_a_renamed_member_is_one_that_left_and_one_that_came(history):
    history.git("checkout", "-q", history.revs["base"])
    path = history.path / "packages/b/pyproject.toml"
    path.write_text(path.read_text().replace('name = "b"', 'name = "b2"'))
    data = history.affected("--base", "HEAD")
    assert data["removed"] == ["b"]
    assert data["affected"] == ["b2", "c"]
    assert data["reasons"]["b2"] == ["file packages/b/pyproject.toml"]
    assert data["reasons"]["c"] == ["depended on b, which left the workspace"]


def test_a_base_that_was_no_workspace_is_a_warning(repo):
    repo.write("pyproject.toml", "[tool.other]\n")
    before = repo.commit("not a workspace yet")
    repo.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    repo.member("packages/a", "a")
    after = repo.commit("a workspace")
    result = repo.yard("affected", "--base", before, "--head", after, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["affected"] == ["a"]
    assert data["warnings"] == [
        f"the workspace at the merge base {before[:12]} cannot be read ({before}:pyproject.toml: "
        "neither [tool.uv.workspace] nor [project]: not a uv workspace root): members that left "
        "the workspace since are not known"
    ]
    assert result.err == f"yard: warning: {data['warnings'][0]}\n"


def test_bad_refs_for_the_heads_workspace_are_one_line(history):
    result = history.yard("affected", "--base", "HEAD", "--head", "nosuch")
    assert result.code == 2
    assert (
        result.err
        == "yard: error: unknown git ref 'nosuch'; check the name (git branch -a, git tag)\n"
    )


def test_a_root_that_did_not_exist_at_the_head(history, repo_at):
    sub = history.path / "sub"
    sub.mkdir()
    shutil.move(history.path / "packages", sub / "packages")
    shutil.move(history.path / "pyproject.toml", sub / "pyproject.toml")
    history.commit("move the workspace down")
    result = repo_at(sub).yard("affected", "--base", "HEAD", "--head", history.revs["base"])
    assert result.code == 2
    assert result.err == (
        f"yard: error: {sub} did not exist at {history.revs['base']}: no workspace to read there\n"
    )


def test_a_commits_workspace_is_read_without_a_checkout(history):
    before = sorted(p.name for p in (history.path / "packages").iterdir())
    workspace = load_workspace(history.path, rev=history.revs["base"])
    assert sorted(workspace.members) == ["a", "b", "c", "z"]
    assert workspace.members["c"].depends_on == ["b"]
    assert sorted(p.name for p in (history.path / "packages").iterdir()) == before
    assert history.git("status", "--porcelain") == ""


def test_errors_in_a_commits_files_name_the_commit(history):
    history.write("packages/z/pyproject.toml", "[project\n")
    bad = history.commit("broken z")
    result = history.yard("affected", "--base", "HEAD~1", "--head", bad)
    assert result.code == 2
    assert result.err.startswith(f"yard: error: {bad}:packages/z/pyproject.toml:1:")
    history.write("packages/y/README.md", "no pyproject\n")
    missing = history.commit("a member folder without pyproject")
    result = history.yard("affected", "--base", "HEAD~1", "--head", missing)
    assert result.err.startswith(
        f"yard: error: {missing}:packages/y: workspace member folder has no pyproject.toml"
    )


def test_a_dependency_bump_does_not_read_the_whole_merge_base(history, monkeypatch):
    """A member's pyproject edited with its name kept cannot make a member leave: yard reads
    that one file as of the merge base, not the merge base's workspace. A deletion can."""
    from yard import _workspace

    read_at: list[str | None] = []
    load = _workspace.load_workspace

    def spy(root, *, rev=None):
        read_at.append(rev)
        return load(root, rev=rev)

    monkeypatch.setattr(_workspace, "load_workspace", spy)
    path = history.path / "packages/c/pyproject.toml"
    path.write_text(path.read_text().replace('"a"', '"a", "z"'))
    data = history.affected("--base", "HEAD")
    assert data["affected"] == ["c"]
    assert data["removed"] == []
    assert read_at == [None]  # the working tree only
    shutil.rmtree(history.path / "packages/e")
    data = history.affected("--base", "HEAD")
    assert data["removed"] == ["e"]
    assert read_at[1:] == [None, history.git("rev-parse", "HEAD")]


@pytest.mark.parametrize(
    "pattern",
    [
        "packages/*",
        "./packages/*",
        "packages//*",
        "packages/../packages/*",
        "packages/[ab]*",
        "packages/?",
        "**/pyproject.toml",
        "packages/**",
        "**",
        "*",
        "nowhere/*",
        "packages/a",
    ],
)
def test_a_commits_tree_matches_globs_as_glob_matches_a_checkout(history, pattern):
    import glob
    import os

    from yard._tree import Tree

    history.write("packages/.hidden/pyproject.toml", "")
    history.write("packages/a/deep/er/file.txt", "")
    history.write("packages/file.txt", "")
    commit = history.commit("more shapes")
    root = str(history.path)
    expected = sorted(
        os.path.normpath(os.path.relpath(m, root))
        for m in glob.glob(f"{root}/{pattern}", recursive=True, include_hidden=True)
        if "/.git/" not in m + "/" and not m.endswith("/.git")
    )
    assert Tree(history.path, commit).glob(pattern) == expected


def test_the_root_project_does_not_own_the_files_of_a_member_that_left(history):
    """With a root project every path has an owner at the head (the root); a file of a
    member folder that left belongs to that member, as of the merge base, not to the root."""
    history.git("checkout", "-q", history.revs["base"])
    history.write(
        "pyproject.toml",
        '[project]\nname = "top"\nversion = "1"\n\n[tool.uv.workspace]\nmembers = ["packages/*"]\n',
    )
    history.commit("a root project")
    shutil.rmtree(history.path / "packages/b")
    data = history.affected("--base", "HEAD")
    assert data["removed"] == ["b"]
    assert "top" not in data["affected"]
    assert data["affected"] == ["c"]


def test_a_moved_branch_is_read_again(history):
    """What is read from a commit is cached under its tree: a ref that moves is read anew."""
    first = history.affected("--base", history.revs["base"], "--head", "main")
    assert "e" in first["affected"]
    history.git("checkout", "-q", "main")
    history.member("packages/f", "f")
    history.commit("f")
    second = history.affected("--base", history.revs["base"], "--head", "main")
    assert second["affected"] == sorted([*first["affected"], "f"])


def test_build_affected_as_of_a_head_that_the_working_tree_lacks_is_one_line(history, tmp_path):
    result = history.yard(
        "build",
        "--affected",
        "--base",
        history.revs["base"],
        "--head",
        history.revs["head"],
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert result.code == 2
    assert result.err == (
        f"yard: error: d: affected as of {history.revs['head']} but not in the working tree, "
        f"which yard build builds; check out {history.revs['head']} to build them\n"
    )
