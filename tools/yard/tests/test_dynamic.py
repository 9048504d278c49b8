"""Members whose dependencies are dynamic (a build hook fills them in): edges from uv.lock,
with the reason naming it, and a warning when neither the pyproject nor the lock can say."""

from __future__ import annotations

import shutil

import pytest
from yard import load_workspace


@pytest.fixture
def dynamic(patterns, tmp_path, repo_at):
    """A copy of the generated ``dynamic`` workspace: dyn's hatch hook gives it core, and lib
    in the extra ``x``; top depends on dyn; locked by the real uv."""
    repo = repo_at(tmp_path / "dynamic")
    shutil.copytree(patterns["dynamic"].path, repo.path)
    return repo


def test_a_change_reaches_a_dynamic_member_through_the_locks_edges(dynamic):
    dynamic.write("packages/core/src/core/extra.py", "")
    data = dynamic.affected("--base", "HEAD")
    assert data["affected"] == ["core", "dyn", "top"]
    assert data["reasons"]["dyn"] == ["depends on core (dependency from uv.lock)"]
    assert data["reasons"]["top"] == ["reaches core via dyn"]
    assert data["warnings"] == []
    dynamic.remove("packages/core/src/core/extra.py")
    dynamic.write("packages/lib/src/lib/extra.py", "")
    assert dynamic.affected("--base", "HEAD")["reasons"]["dyn"] == [
        "depends on lib (optional[x] from uv.lock)"
    ]


@pytest.mark.parametrize(
    ("lock", "why"),
    [
        (None, "there is no uv.lock to read them from"),
        ("version = 1\nrequires-python = '>=3.11'\n", "uv.lock has no entry for dyn"),
        ("version = 7\n", "uv.lock cannot be read (uv.lock: unsupported lock version 7"),
    ],
    ids=["no lock", "no entry", "unreadable"],
)
def test_without_the_lock_it_warns_that_the_edges_are_unknown(dynamic, lock, why):
    if lock is None:
        dynamic.remove("uv.lock")
    else:
        dynamic.write("uv.lock", lock)
    result = dynamic.yard("deps", "dyn")
    assert (result.code, result.out) == (0, "")
    assert result.err.startswith(
        f"yard: warning: packages/dyn/pyproject.toml: dyn's dependencies and "
        f"optional-dependencies are dynamic and {why}"
    )
    assert result.err.endswith("its internal dependencies are unknown to yard (run uv lock)\n")
    assert result.err.count("\n") == 1
    dynamic.commit("the lock as it is")  # (a lock change alone affects every member)
    dynamic.write("packages/core/src/core/extra.py", "")
    data = dynamic.affected("--base", "HEAD")
    assert data["affected"] == ["core"]
    assert data["warnings"] == [result.err.removeprefix("yard: warning: ").rstrip("\n")]


HOOK = """\
from hatchling.metadata.plugin.interface import MetadataHookInterface


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata):
        metadata["dependencies"] = ["lib"]
"""


def test_the_edges_as_of_a_commit_come_from_that_commits_lock(dynamic, relock):
    old = dynamic.git("rev-parse", "HEAD")
    dynamic.write("packages/dyn/hatch_build.py", HOOK)
    relock(dynamic, "--refresh-package", "dyn")  # uv's metadata cache keys on pyproject.toml
    new = dynamic.commit("dyn needs lib now")
    dynamic.git("checkout", "-q", old)

    def edges(workspace):
        return [(e.to, e.kind, e.origin) for e in workspace.members["dyn"].edges]

    assert edges(load_workspace(dynamic.path)) == [
        ("core", "dependency", "uv.lock"),
        ("lib", "optional", "uv.lock"),
    ]
    assert edges(load_workspace(dynamic.path, rev=new)) == [("lib", "dependency", "uv.lock")]
    assert edges(load_workspace(dynamic.path, rev=old)) == edges(load_workspace(dynamic.path))
    dynamic.git("checkout", "-q", "main")
    dynamic.write("packages/lib/src/lib/extra.py", "")
    later = dynamic.commit("lib changes")
    dynamic.git("checkout", "-q", old)  # the working tree's lock: lib only in dyn's extra
    data = dynamic.affected("--base", new, "--head", later)
    assert data["reasons"]["dyn"] == ["depends on lib (dependency from uv.lock)"]


def test_check_reads_lock_edges_as_declarations(dynamic):
    result = dynamic.yard("check")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        "packages/dyn/pyproject.toml: dyn: depends on lib (optional[x] from uv.lock) but never "
        "imports it; remove it or list it in [tool.yard] allow-unused"
    )
    assert "core" not in result.out  # dyn imports core, which the lock says it depends on


def test_a_static_workspace_reads_no_lock(repo, monkeypatch):
    """The lock is read only when a member's dependencies are dynamic (start-up time)."""
    repo.member("packages/a", "a")
    repo.write("uv.lock", "not a lock at all")
    workspace = load_workspace(repo.path)
    assert workspace.warnings == ()


FILE_HOOK = """\
from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata):
        listed = Path(self.root, "..", "..", "deps", "dyn.txt").read_text().split()
        metadata["dependencies"] = listed
"""


def test_a_hook_input_outside_the_member_reaches_it_through_its_own_lock_entry(dynamic, relock):
    """dyn's hook reads its dependencies from deps/dyn.txt, a file of no member: when it
    lists one more member, the only trace is dyn's own block in the re-locked uv.lock (no
    third-party package changed)."""
    dynamic.write("packages/dyn/hatch_build.py", FILE_HOOK)
    dynamic.write("deps/dyn.txt", "core\n")
    relock(dynamic, "--refresh-package", "dyn")
    dynamic.commit("dyn's dependencies from a file")
    dynamic.write("deps/dyn.txt", "core\nlib\n")
    relock(dynamic, "--refresh-package", "dyn")
    data = dynamic.affected("--base", "HEAD")
    assert data["changed_files"] == ["deps/dyn.txt", "uv.lock"]
    assert data["affected"] == ["dyn", "top"]
    assert data["reasons"]["dyn"] == ["uv.lock: its own locked entry changed"]
    assert data["reasons"]["top"] == ["depends on dyn"]
