"""list, graph, deps, dependents and order, as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture
def diamond(repo):
    """core <- (db, web) <- app, with app's web dependency through an extra."""
    repo.member("packages/core", "core", version="1.2.0")
    repo.member("packages/db", "db", ("core",))
    repo.member("packages/web", "web", ("core",))
    repo.member(
        "packages/app",
        "app",
        ("db",),
        extra='[project.optional-dependencies]\nhttp = ["web"]\n',
    )
    repo.member("packages/solo", "solo")
    return repo


def test_list(diamond):
    result = diamond.yard("list", "--json")
    assert result.code == 0
    assert result.json()[:2] == [
        {"name": "app", "version": "0.1.0", "path": "packages/app"},
        {"name": "core", "version": "1.2.0", "path": "packages/core"},
    ]
    assert diamond.yard("list").out.splitlines()[1].split() == ["core", "1.2.0", "packages/core"]


def test_graph_json_shape(diamond):
    data = diamond.yard("graph", "--format", "json").json()
    app = data["members"][0]
    assert app == {
        "name": "app",
        "version": "0.1.0",
        "path": "packages/app",
        "depends_on": ["db", "web"],
        "edges": [
            {"to": "db", "kind": "dependency", "requirement": "db"},
            {"to": "web", "kind": "optional", "requirement": "web", "extra": "http"},
        ],
    }


def test_graph_text_dot_mermaid(diamond):
    text = diamond.yard("graph").out
    assert "app 0.1.0  packages/app\n  -> db  (dependency)\n  -> web  (optional[http])" in text
    dot = diamond.yard("graph", "--format", "dot").out
    assert dot.startswith("digraph workspace {")
    assert '"app" -> "web" [label="optional[http]", style=dashed];' in dot
    mermaid = diamond.yard("graph", "--format", "mermaid").out
    assert mermaid.startswith("graph LR")
    assert "-.->|optional[http]|" in mermaid


def test_graph_focus_keeps_deps_and_dependents_only(diamond):
    data = diamond.yard("graph", "--format", "json", "--focus", "db").json()
    assert [m["name"] for m in data["members"]] == ["app", "core", "db"]
    assert diamond.yard("graph", "--focus", "nope").code == 2


def test_deps_and_dependents(diamond):
    assert diamond.yard("deps", "app").lines() == ["core", "db", "web"]
    assert diamond.yard("deps", "app", "--direct").lines() == ["db", "web"]
    assert diamond.yard("dependents", "core").lines() == ["app", "db", "web"]
    assert diamond.yard("dependents", "core", "--direct", "--json").json() == ["db", "web"]
    assert diamond.yard("dependents", "solo").out == ""


def test_order_in_waves(diamond):
    result = diamond.yard("order")
    assert result.out.splitlines() == [
        "wave 1: core solo",
        "wave 2: db web",
        "wave 3: app",
    ]
    assert diamond.yard("order", "--json").json() == {
        "waves": [["core", "solo"], ["db", "web"], ["app"]],
        "cycles": [],
    }


def test_usage_errors_are_one_line_exit_2(diamond):
    for args in (["graph", "--format", "png"], ["frobnicate"], ["deps"]):
        result = diamond.yard(*args)
        assert result.code == 2
        assert result.err.startswith("yard: error: ")
        assert result.err.count("\n") == 1


def test_the_command_runs_as_a_process(diamond):
    """The console entry point: a real process, a real exit status, no traceback."""
    ok = subprocess.run(
        [sys.executable, "-m", "yard", "deps", "app", "--root", str(diamond.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ok.returncode, ok.stdout.split()) == (0, ["core", "db", "web"])
    bad = subprocess.run(
        [sys.executable, "-m", "yard", "deps", "nope", "--root", str(diamond.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "yard", "deps", "nope", "--root", str(diamond.path), "--debug"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" in debug.stderr


def test_a_warm_affected_run_imports_neither_tomllib_nor_packaging(diamond):
    """Start-up stays lean: bare-name requirements need no packaging, plain TOML needs no
    tomllib, the parse cache spares even the fast reader, and nothing of the project being
    read (or of switchyard) is ever imported."""
    diamond.commit("init")
    code = (
        "import sys, contextlib, io\n"
        "from yard._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['affected', '--base', 'HEAD', '--root', {str(diamond.path)!r}]) == 0\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tomllib', 'packaging', 'switchyard', 'ast', 'core', 'app'))))\n"
    )
    code += "print(' '.join(sorted(m for m in sys.modules if m.startswith('yard._fast'))))\n"
    run = [sys.executable, "-c", code]
    first = subprocess.run(run, capture_output=True, text=True, check=True)
    assert first.stdout.split("\n")[:2] == ["", "yard._fasttoml"]  # plain files
    warm = subprocess.run(run, capture_output=True, text=True, check=True)
    assert warm.stdout.strip() == ""
    with open(diamond.path / "pyproject.toml", "a") as root:
        root.write("[tool.other]\nratio = 0.5\n")  # a float: tomllib reads this file
    first = subprocess.run(run, capture_output=True, text=True, check=True)
    assert {m.split(".")[0] for m in first.stdout.split()} == {"tomllib", "yard"}
    warm = subprocess.run(run, capture_output=True, text=True, check=True)
    assert warm.stdout.strip() == ""


def test_explain_shortens_long_file_lists(diamond):
    diamond.commit("init")
    for i in range(13):
        diamond.write(f"packages/solo/src/solo/m{i:02d}.py", "")
    text = diamond.yard("affected", "--base", "HEAD", "--explain").out
    assert text.count("    file packages/solo/") == 10
    assert "    ... and 3 more file(s)\n" in text
