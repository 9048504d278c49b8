"""yard check: imports (read with ast, never run) against declared internal dependencies."""

from __future__ import annotations


def test_a_clean_workspace_passes(chain):
    result = chain.yard("check")
    assert result.code == 0
    assert result.out == "yard check: 4 member(s), imports match declared dependencies\n"


def test_an_undeclared_internal_import(chain):
    chain.write("packages/leaf/src/leaf/extra.py", "import os\n\nfrom base.sub import thing\n")
    result = chain.yard("check")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "packages/leaf/src/leaf/extra.py:3: leaf: imports base.sub from member base, which leaf "
        "does not declare; add base to project.dependencies"
    )


def test_a_declared_dependency_never_imported(chain):
    chain.write("packages/leaf/src/leaf/__init__.py", "import json\n")
    result = chain.yard("check", "--json")
    assert result.code == 1
    assert result.json() == [
        {
            "member": "leaf",
            "kind": "unused",
            "target": "mid",
            "where": "packages/leaf/pyproject.toml",
            "message": "declares mid (dependency) but never imports it; remove it or list it in "
            "[tool.yard] allow-unused",
            "severity": "error",
        }
    ]
    chain.member("packages/leaf", "leaf", ("mid",), extra='[tool.yard]\nallow-unused = ["Mid"]\n')
    chain.write("packages/leaf/src/leaf/__init__.py", "import json\n")
    assert chain.yard("check").code == 0


def test_tests_may_use_group_dependencies_but_package_code_may_not(repo):
    repo.member("packages/testkit", "testkit")
    repo.member("packages/app", "app", extra='[dependency-groups]\ndev = ["testkit"]\n')
    repo.write("packages/app/tests/test_app.py", "import app\nimport testkit\n")
    assert repo.yard("check").code == 0
    repo.write("packages/app/src/app/__init__.py", "if True:\n    import testkit.fixtures\n")
    result = repo.yard("check")
    assert result.code == 1
    assert "packages/app/src/app/__init__.py:2: app: imports testkit.fixtures" in result.out


def test_entry_point_edges_need_no_import(repo):
    repo.member("packages/worker", "worker", extra='[tool.yard]\nconsumes = ["acme.plugins"]\n')
    repo.member(
        "packages/auth", "auth", extra='[project.entry-points."acme.plugins"]\nauth = "auth"\n'
    )
    assert repo.yard("check").code == 0


def test_flat_layout_and_namespace_packages(repo):
    repo.write("packages/flat/pyproject.toml", '[project]\nname = "flat-lib"\nversion = "1"\n')
    repo.write("packages/flat/flatlib/__init__.py", "")
    repo.write("packages/ns/pyproject.toml", '[project]\nname = "acme-ns"\nversion = "1"\n')
    repo.write("packages/ns/src/acme/ns/__init__.py", "")
    repo.member("packages/user", "user", ("flat-lib", "acme-ns"), imports=("flatlib", "acme.ns"))
    assert repo.yard("check").code == 0
    repo.member("packages/user", "user", ("acme-ns",), imports=("flatlib", "acme.ns"))
    result = repo.yard("check")
    assert result.code == 1
    assert "imports flatlib from member flat-lib" in result.out


def test_a_file_that_does_not_parse_is_reported(chain):
    chain.write("packages/mid/src/mid/broken.py", "def f(:\n")
    result = chain.yard("check")
    assert result.code == 1
    assert "packages/mid/src/mid/broken.py:1: mid: cannot parse:" in result.out


def test_relative_and_third_party_imports_are_not_internal(chain):
    chain.write(
        "packages/base/src/base/more.py",
        "from . import x\nfrom .y import z\nimport requests\nimport midway\n",
    )
    assert chain.yard("check").code == 0
