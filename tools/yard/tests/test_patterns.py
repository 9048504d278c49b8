"""yard's graph against uv.lock's on generated workspaces of each real-world pattern, locked by
the real ``uv lock`` in real git repositories (see ``patterns`` in conftest.py): a cycle
through an extra, a cycle through a group, a member with dynamic dependencies, members added
and removed between two commits; with --root before and after the command."""

from __future__ import annotations

import pytest
from yard import Graph, load_workspace

NAMES = ["extra-cycle", "group-cycle", "dynamic", "history"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("where", ["before", "after"])
def test_the_graph_is_the_locks(
    patterns, name, where, tmp_path, monkeypatch, lock_graph, yard_graph
):
    repo = patterns[name]
    monkeypatch.chdir(tmp_path)  # outside the workspace: only --root names it
    words = ["graph", "--format", "json"]
    root = ["--root", str(repo.path)]
    result = repo.yard(*(root + words if where == "before" else words + root), root=False)
    assert result.code == 0, result.err
    assert result.err == ""
    expected = lock_graph((repo.path / "uv.lock").read_text())
    assert expected  # every pattern has internal edges
    assert yard_graph(result.json()) == expected


@pytest.mark.parametrize("rev", ["base", "head", "later"])
def test_the_graph_as_of_a_commit_is_that_commits_lock(patterns, rev, lock_graph, yard_graph):
    repo = patterns["history"]
    commit = repo.revs[rev]
    workspace = load_workspace(repo.path, rev=commit)
    graph = Graph(workspace.members)
    data = {
        "members": [
            {"name": m.name, "edges": [e.as_dict() for e in m.edges]}
            for m in (graph.members[n] for n in sorted(graph.members))
        ]
    }
    assert yard_graph(data) == lock_graph(repo.git("show", f"{commit}:uv.lock"))
    assert (
        set(workspace.members)
        == {
            "base": {"a", "b", "c", "z"},
            "head": {"a", "c", "d", "z"},
            "later": {"a", "c", "e", "z"},
        }[rev]
    )


def test_cycles_are_the_locks_cycles(patterns):
    assert patterns["extra-cycle"].yard("order", "--json").json() == {
        "waves": [["core", "plug-a", "plug-b"], ["app"]],
        "cycles": [["core", "plug-a", "plug-b"]],
    }
    assert patterns["group-cycle"].yard("order", "--json").json() == {
        "waves": [["lib", "testutils"], ["user"]],
        "cycles": [["lib", "testutils"]],
    }


def test_dynamic_edges_come_from_the_lock_and_say_so(patterns):
    repo = patterns["dynamic"]
    dyn = next(
        m for m in repo.yard("graph", "--format", "json").json()["members"] if m["name"] == "dyn"
    )
    assert dyn["edges"] == [
        {"to": "core", "kind": "dependency", "origin": "uv.lock"},
        {"to": "lib", "kind": "optional", "extra": "x", "origin": "uv.lock"},
    ]
    assert "  -> core  (dependency from uv.lock)" in repo.yard("graph").out
