"""The workspace graph: members found as uv finds them, edges of every kind, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from yard import Graph, WorkspaceError, find_root, load_workspace


def edges(repo, name):
    ws = load_workspace(repo.path)
    return sorted((e.to, e.label()) for e in ws.members[name].edges)


def test_members_follow_globs_and_exclude(repo):
    repo.write(
        "pyproject.toml",
        """
        [tool.uv.workspace]
        members = ["packages/*", "libs/**/pkg"]
        exclude = ["packages/skip*"]
        """,
    )
    repo.member("packages/a", "a")
    repo.member("packages/skipped", "skipped")
    repo.member("libs/deep/er/pkg", "deep")
    repo.write("packages/.hidden/readme.txt", "hidden folders without pyproject are skipped\n")
    repo.write("packages/cache/__pycache__/x.pyc", "")
    repo.write("packages/notes.txt", "a file matched by the glob is no member\n")
    ws = load_workspace(repo.path)
    assert {n: m.path for n, m in ws.members.items()} == {
        "a": "packages/a",
        "deep": "libs/deep/er/pkg",
    }


def test_a_matched_folder_without_pyproject_is_an_error_naming_it(repo):
    repo.member("packages/a", "a")
    repo.write("packages/stray/main.py", "print()\n")
    result = repo.yard("list")
    assert result.code == 2
    assert result.err.startswith("yard: error: packages/stray: workspace member folder has no")
    assert result.err.count("\n") == 1


def test_unmanaged_member_is_left_out(repo):
    repo.member("packages/a", "a")
    repo.member("packages/b", "b", extra="[tool.uv]\nmanaged = false\n")
    assert list(load_workspace(repo.path).members) == ["a"]


def test_root_with_a_project_is_a_member(repo):
    repo.write(
        "pyproject.toml",
        """
        [project]
        name = "Root_App"
        version = "1.0"
        dependencies = ["a"]

        [tool.uv.workspace]
        members = ["packages/*"]

        [tool.uv.sources]
        a = { workspace = true }
        """,
    )
    repo.member("packages/a", "a")
    ws = load_workspace(repo.path)
    assert ws.members["root-app"].path == "."
    assert [e.to for e in ws.members["root-app"].edges] == ["a"]


def test_names_are_compared_normalized(repo):
    repo.member("packages/foo", "Foo_Bar")
    repo.member("packages/app", "app", ("foo.bar>=1", "FOO-bar[x]; python_version >= '3.8'"))
    ws = load_workspace(repo.path)
    assert "foo-bar" in ws.members
    found = ws.members["app"].edges
    assert [(e.to, e.marker, e.extras) for e in found] == [
        ("foo-bar", None, ()),
        ("foo-bar", 'python_version >= "3.8"', ("x",)),
    ]
    assert repo.yard("deps", "app").lines() == ["foo-bar"]
    assert repo.yard("dependents", "FOO_BAR").lines() == ["app"]


def test_edges_of_every_kind(repo):
    repo.member("packages/lib", "lib")
    repo.member("packages/fmt", "fmt")
    repo.member("packages/testkit", "testkit")
    repo.member("packages/lint", "lint")
    repo.member(
        "packages/app",
        "app",
        ("lib>=0.1", "requests"),
        extra="""
        [project.optional-dependencies]
        Pretty = ["fmt"]

        [dependency-groups]
        base = ["testkit", "pytest"]
        test = [{include-group = "base"}]

        [tool.uv]
        dev-dependencies = ["lint"]
        """,
    )
    assert edges(repo, "app") == [
        ("fmt", "optional[pretty]"),
        ("lib", "dependency"),
        ("lint", "group:dev"),
        ("testkit", "group:base"),
        ("testkit", "group:test"),
    ]


def test_sources_in_member_and_root(repo):
    repo.write(
        "pyproject.toml",
        """
        [tool.uv.workspace]
        members = ["packages/*"]

        [tool.uv.sources]
        lib = { workspace = true }
        elsewhere = { git = "https://example.com/elsewhere.git" }
        """,
    )
    repo.member("packages/lib", "lib")
    repo.member("packages/tool", "tool")
    repo.member("packages/elsewhere", "elsewhere")
    repo.member(
        "packages/app",
        "app",
        ("lib", "tool", "elsewhere"),
        extra='[tool.uv.sources]\ntool = { path = "../tool", editable = true }\n',
    )
    ws = load_workspace(repo.path)
    found = {e.to: e.source for e in ws.members["app"].edges}
    # a source pointing away from the member makes the dependency third-party
    assert found == {"lib": "root", "tool": "member"}


def test_entry_point_edges(repo):
    repo.member(
        "packages/worker", "worker", extra='[tool.yard]\nconsumes = ["switchyard.actions"]\n'
    )
    for name in ("auth", "billing"):
        repo.member(
            f"packages/{name}",
            name,
            extra=f'[project.entry-points."switchyard.actions"]\n"{name}.x" = "{name}:x"\n',
        )
    repo.member("packages/cli", "cli", extra='[project.scripts]\ncli = "cli:main"\n')
    assert edges(repo, "worker") == [
        ("auth", "entry-point:switchyard.actions"),
        ("billing", "entry-point:switchyard.actions"),
    ]
    graph = repo.yard("graph", "--format", "json").json()
    worker = next(m for m in graph["members"] if m["name"] == "worker")
    assert worker["depends_on"] == ["auth", "billing"]
    assert worker["edges"][0] == {
        "to": "auth",
        "kind": "entry-point",
        "entry_point_group": "switchyard.actions",
    }


def test_a_cycle_of_any_declared_kind_is_read_as_uv_reads_it(repo):
    """uv locks and syncs a workspace with cycles through dependencies, extras and groups;
    yard reads it too (no error), and `order` puts the cycle in one wave."""
    repo.member("packages/a", "a", ("b",))
    repo.member("packages/b", "b", ("c",))
    repo.member("packages/c", "c", extra='[dependency-groups]\ndev = ["a"]\n')
    result = repo.yard("order")
    assert (result.code, result.err) == (0, "")
    assert result.out == "wave 1: a b c\n  cycle: a b c\n"


def test_malformed_toml_names_file_and_line(repo):
    repo.member("packages/a", "a")
    repo.write("packages/b/pyproject.toml", '[project]\nname = "b"\nversion = \n')
    result = repo.yard("list")
    assert result.code == 2
    assert result.err.startswith("yard: error: packages/b/pyproject.toml:3:")
    assert "invalid TOML" in result.err


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[project]\nname = "b"\ndependencies = "a"\n', ":3: project.dependencies must be"),
        ('[project]\nname = "b"\ndependencies = ["a", ">=1"]\n', ":3: invalid requirement '>=1'"),
        ('[project]\nname = "b"\ndependencies = ["a ==="]\n', ":3: invalid requirement 'a ==='"),
        ('[project]\nname = "b"\n\n[dependency-groups]\nx = [{include-group = "y"}]\n', ":5:"),
        ("[tool.other]\nx = 1\n", ":1: workspace member has no [project] table"),
        ('[project]\nname = "not a name"\n', ":2: project.name must be a valid project name"),
    ],
)
def test_malformed_member_files(repo, text, where):
    repo.member("packages/a", "a")
    repo.write("packages/b/pyproject.toml", text)
    result = repo.yard("graph")
    assert result.code == 2
    assert result.err.startswith(f"yard: error: packages/b/pyproject.toml{where}"), result.err


def test_two_members_with_one_name(repo):
    repo.member("packages/a", "a")
    repo.member("packages/b", "A")
    result = repo.yard("list")
    assert result.code == 2
    assert "member name 'a' is also used by packages/a/pyproject.toml" in result.err


def test_root_is_found_from_a_subfolder_and_given_by_root(repo, monkeypatch):
    repo.member("packages/a", "a")
    inner = repo.path / "packages" / "a" / "src"
    assert find_root(inner) == repo.path
    monkeypatch.chdir(inner)
    assert repo.yard("list", root=False).out.split() == ["a", "0.1.0", "packages/a"]
    monkeypatch.chdir(repo.path.parent)
    result = repo.yard("list", root=False)
    assert result.code == 2
    assert "pass --root DIR" in result.err
    assert repo.yard("list", "--root", "nowhere", root=False).code == 2


def test_results_are_the_same_from_the_cache(repo, monkeypatch):
    repo.member("packages/a", "a")
    repo.member("packages/b", "b", ("a",))
    first = repo.yard("graph", "--format", "json").out
    assert os.listdir(os.environ["YARD_CACHE_DIR"])  # the cache was written
    assert repo.yard("graph", "--format", "json").out == first
    repo.member("packages/b", "b")  # an edit misses the cache and is read again
    assert Graph(load_workspace(repo.path).members).dependents("a") == []
    monkeypatch.setenv("YARD_NO_CACHE", "1")
    assert repo.yard("deps", "b").out == ""


def test_unknown_member_names_the_members(repo):
    repo.member("packages/a", "a")
    result = repo.yard("deps", "zzz")
    assert result.code == 2
    assert result.err == "yard: error: no workspace member named 'zzz' (members: a)\n"


def test_workspace_root_must_have_a_pyproject(tmp_path: Path):
    with pytest.raises(WorkspaceError, match=r"no pyproject\.toml here"):
        load_workspace(tmp_path)


def test_a_corrupt_or_unwritable_cache_only_costs_speed(repo, tmp_path, monkeypatch):
    repo.member("packages/a", "a")
    repo.member("packages/b", "b", ("a",))
    expected = repo.yard("deps", "b").out
    cache = Path(os.environ["YARD_CACHE_DIR"])
    for path in cache.iterdir():
        path.write_bytes(b"\x00garbage")
    assert repo.yard("deps", "b").out == expected
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("YARD_CACHE_DIR", str(blocked))
    result = repo.yard("deps", "b")
    assert (result.code, result.out) == (0, expected)


def test_a_malformed_root_pyproject_names_its_line(repo):
    repo.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"\n')
    result = repo.yard("list")
    assert result.code == 2
    assert result.err.startswith("yard: error: pyproject.toml:3:")
    repo.write("pyproject.toml", '[tool.uv.workspace]\nmembers = "packages/*"\n')
    assert repo.yard("list").err.startswith(
        "yard: error: pyproject.toml:2: tool.uv.workspace.members must be a list of strings"
    )
