"""Dependency cycles between members, which uv accepts: yard reads, orders and reports them."""

from __future__ import annotations

import pytest
from yard import Graph, load_workspace
from yard._graph import components

SOURCES = "[tool.uv.sources]\n{} = {{ workspace = true }}\n"


@pytest.fixture
def cyclic(repo):
    """core's ``all`` extra lists the plugins that depend on it; lib's test group uses
    testutils, which depends on lib; app uses a plugin; solo stands alone."""
    repo.member(
        "packages/core",
        "core",
        extra='[project.optional-dependencies]\nall = ["plug-a", "plug-b"]\n'
        '[tool.yard]\nallow-unused = ["plug-a", "plug-b"]\n',
    )
    repo.member("packages/plug-a", "plug-a", ("core",), imports=("core",))
    repo.member("packages/plug-b", "plug-b", ("core",), imports=("core",))
    repo.member("packages/app", "app", ("plug-a",), imports=("plug_a",))
    repo.member("packages/lib", "lib", extra='[dependency-groups]\ntest = ["testutils"]\n')
    repo.member("packages/testutils", "testutils", ("lib",), imports=("lib",))
    repo.write("packages/lib/tests/test_lib.py", "import lib\nimport testutils\n")
    repo.member("packages/solo", "solo")
    repo.commit("init")
    return repo


def test_every_command_reads_a_workspace_with_cycles(cyclic):
    assert cyclic.yard("list").code == 0
    assert cyclic.yard("deps", "core").lines() == ["plug-a", "plug-b"]
    assert cyclic.yard("deps", "plug-a").lines() == ["core", "plug-b"]
    assert cyclic.yard("dependents", "core").lines() == ["app", "plug-a", "plug-b"]
    assert cyclic.yard("dependents", "lib").lines() == ["testutils"]


def test_order_puts_a_cycle_in_one_wave(cyclic):
    assert cyclic.yard("order").out.splitlines() == [
        "wave 1: core lib plug-a plug-b solo testutils",
        "  cycle: core plug-a plug-b",
        "  cycle: lib testutils",
        "wave 2: app",
    ]
    assert cyclic.yard("order", "--json").json() == {
        "waves": [["core", "lib", "plug-a", "plug-b", "solo", "testutils"], ["app"]],
        "cycles": [["core", "plug-a", "plug-b"], ["lib", "testutils"]],
    }


def test_a_cycle_is_ordered_after_what_it_needs_and_before_its_dependents(repo):
    repo.member("packages/base", "base")
    repo.member("packages/x", "x", ("base", "y"))
    repo.member("packages/y", "y", ("z",))
    repo.member("packages/z", "z", ("x",))
    repo.member("packages/top", "top", ("z",))
    assert repo.yard("order", "--json").json() == {
        "waves": [["base"], ["x", "y", "z"], ["top"]],
        "cycles": [["x", "y", "z"]],
    }


def test_graph_shows_the_cycles(cyclic):
    text = cyclic.yard("graph").out
    assert (
        "cycle of 3: core plug-a plug-b\n  e.g. core -[optional[all]]-> plug-a -[dependency]-> core"
        in text
    )
    assert text.endswith(
        "cycle of 2: lib testutils\n  e.g. lib -[group:test]-> testutils -[dependency]-> lib\n"
    )
    data = cyclic.yard("graph", "--format", "json").json()
    assert data["cycles"] == [["core", "plug-a", "plug-b"], ["lib", "testutils"]]
    dot = cyclic.yard("graph", "--format", "dot").out
    assert 'subgraph "cluster_cycle_2" { label="cycle"; color=red; "lib"; "testutils"; }' in dot
    assert '"plug-a" -> "core" [label="dependency", color=red];' in dot
    assert '"app" -> "plug-a" [label="dependency"];' in dot
    mermaid = cyclic.yard("graph", "--format", "mermaid").out
    assert "  subgraph cycle1 [cycle]\n    m1\n    m3\n    m4\n  end" in mermaid
    focused = cyclic.yard("graph", "--format", "json", "--focus", "app").json()
    assert focused["cycles"] == [["core", "plug-a", "plug-b"]]
    alone = cyclic.yard("graph", "--format", "json", "--focus", "solo").json()
    assert alone["cycles"] == []


def test_a_change_affects_through_a_cycle(cyclic):
    cyclic.write("packages/plug-b/src/plug_b/extra.py", "")
    data = cyclic.affected("--base", "HEAD")
    assert data["affected"] == ["app", "core", "plug-a", "plug-b"]
    assert data["reasons"]["core"] == ["depends on plug-b (optional[all])"]
    assert data["reasons"]["plug-a"] == ["reaches plug-b via core"]
    assert data["reasons"]["app"] == ["reaches plug-b via plug-a -> core"]
    cyclic.commit("plug-b")
    cyclic.write("packages/testutils/src/testutils/extra.py", "")
    data = cyclic.affected("--base", "HEAD")
    assert data["affected"] == ["lib", "testutils"]
    assert data["reasons"]["lib"] == ["depends on testutils (group:test)"]


def test_check_warns_about_a_cycle_and_passes(cyclic):
    result = cyclic.yard("check")
    assert result.code == 0, result.out
    assert result.out.splitlines() == [
        "packages/core/pyproject.toml: core: warning: dependency cycle of 3 members "
        "(core, plug-a, plug-b): core -[optional[all]]-> plug-a -[dependency]-> core",
        "packages/lib/pyproject.toml: lib: warning: dependency cycle of 2 members "
        "(lib, testutils): lib -[group:test]-> testutils -[dependency]-> lib",
        "yard check: 7 member(s), imports match declared dependencies, 2 warning(s)",
    ]
    found = cyclic.yard("check", "--json").json()
    assert [(f["kind"], f["member"], f["target"], f["severity"]) for f in found] == [
        ("cycle", "core", "plug-a plug-b", "warning"),
        ("cycle", "lib", "testutils", "warning"),
    ]


@pytest.mark.parametrize(("setting", "code", "count"), [("error", 1, 2), ("allow", 0, 0)])
def test_check_fails_on_cycles_or_allows_them_as_configured(cyclic, setting, code, count):
    cyclic.write(
        "pyproject.toml",
        f'[tool.uv.workspace]\nmembers = ["packages/*"]\n\n[tool.yard]\ncycles = "{setting}"\n',
    )
    result = cyclic.yard("check", "--json")
    assert result.code == code
    assert [f["severity"] for f in result.json()] == ["error"] * count
    if setting == "error":
        text = cyclic.yard("check").out
        assert "core: dependency cycle of 3 members" in text
        assert text.endswith("yard check: 2 problem(s) in 7 member(s)\n")


def test_a_bad_cycles_setting_names_the_line(cyclic):
    cyclic.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n\n[tool.yard]\ncycles = "loud"\n',
    )
    result = cyclic.yard("list")
    assert result.code == 2
    assert result.err == (
        'yard: error: pyproject.toml:5: tool.yard.cycles must be "warn", "error" or "allow"\n'
    )


def test_entry_point_loops_are_no_cycle(repo):
    repo.member("packages/host", "host", extra='[tool.yard]\nconsumes = ["plugins"]\n')
    repo.member(
        "packages/plugin",
        "plugin",
        ("host",),
        extra='[project.entry-points.plugins]\np = "plugin:p"\n',
    )
    graph = Graph(load_workspace(repo.path).members)
    assert graph.cycles == []
    assert graph.waves() == [["host"], ["plugin"]]
    assert repo.yard("deps", "host").lines() == ["plugin"]


def test_components_come_dependencies_first_without_recursion_limits():
    # a chain longer than Python's recursion limit, closed into one cycle at the end
    n = 5000
    forward = {f"m{i:05d}": [f"m{i + 1:05d}"] for i in range(n - 1)}
    forward[f"m{n - 1:05d}"] = []
    found = components(forward)
    assert len(found) == n
    assert found[0] == [f"m{n - 1:05d}"]  # the one nothing else is needed by comes first
    forward[f"m{n - 1:05d}"] = ["m00000"]
    assert components(forward) == [sorted(forward)]
    diamond = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": [], "e": ["e"]}
    order = [c[0] for c in components(diamond)]
    assert order.index("d") < order.index("b") < order.index("a")
    assert order.index("c") < order.index("a")
