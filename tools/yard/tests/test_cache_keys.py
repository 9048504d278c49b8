"""Build cache keys change when, and only when, an input of the member changes."""

from __future__ import annotations

import textwrap

import pytest
from yard._errors import YardError
from yard._keys import Toolchain, compute_keys
from yard._workspace import load_workspace

HATCH = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
TOOLS = Toolchain(
    uv="uv 0.13.9", python="CPython 3.11.7 linux", backends={"hatchling": "hatchling==1.27.0"}
)

LOCK = textwrap.dedent(
    """\
    version = 1
    revision = 3
    requires-python = ">=3.11"

    [manifest]
    members = ["base", "leaf", "mid", "other"]

    [[package]]
    name = "base"
    version = "0.1.0"
    source = { editable = "packages/base" }
    dependencies = [
        { name = "six" },
    ]

    [[package]]
    name = "leaf"
    version = "0.1.0"
    source = { editable = "packages/leaf" }
    dependencies = [
        { name = "mid" },
    ]

    [[package]]
    name = "mid"
    version = "0.1.0"
    source = { editable = "packages/mid" }
    dependencies = [
        { name = "base" },
    ]

    [package.dev-dependencies]
    dev = [
        { name = "devtool" },
    ]

    [[package]]
    name = "other"
    version = "0.1.0"
    source = { editable = "packages/other" }
    dependencies = [
        { name = "unrelated" },
    ]

    [[package]]
    name = "devtool"
    version = "1.0.0"
    source = { registry = "https://pypi.org/simple" }

    [[package]]
    name = "six"
    version = "1.16.0"
    source = { registry = "https://pypi.org/simple" }
    dependencies = [
        { name = "tiny" },
    ]

    [[package]]
    name = "tiny"
    version = "2.0.0"
    source = { registry = "https://pypi.org/simple" }

    [[package]]
    name = "unrelated"
    version = "3.0.0"
    source = { registry = "https://pypi.org/simple" }
    """
)


@pytest.fixture
def ws(chain):
    """base <- mid <- leaf and other (the shared ``chain`` repo), buildable, with a lock."""
    for name in ("base", "mid", "leaf", "other"):
        path = chain.path / f"packages/{name}/pyproject.toml"
        path.write_text(path.read_text() + HATCH)
    chain.write("uv.lock", LOCK)
    chain.commit("buildable")
    return chain


def keys(repo, *, tools=TOOLS, options=(), lock=None, no_lock=False):
    workspace = load_workspace(repo.path)
    text = (repo.path / "uv.lock").read_text() if lock is None else lock
    if no_lock:
        text = None
    found = compute_keys(
        workspace,
        list(workspace.members),
        toolchain=tools,
        requires=dict.fromkeys(workspace.members, "hatchling"),
        options=options,
        lock_text=text,
    )
    return {name: key for name, (key, _) in found.items()}


def changed(before, after):
    return sorted(name for name in before if before[name] != after[name])


def test_keys_are_stable_and_distinct(ws):
    first = keys(ws)
    assert keys(ws) == first
    assert len(set(first.values())) == 4
    assert all(len(k) == 64 for k in first.values())


def test_a_leaf_file_change_changes_only_the_leaf(ws):
    before = keys(ws)
    ws.write("packages/leaf/src/leaf/__init__.py", "import mid\nVALUE = 1\n")
    assert changed(before, keys(ws)) == ["leaf"]


def test_a_base_file_change_reaches_dependents_through_their_dependency_keys(ws):
    before = keys(ws)
    ws.write("packages/base/src/base/extra.py", "X = 1\n")  # untracked, not ignored: an input
    assert changed(before, keys(ws)) == ["base", "leaf", "mid"]


def test_reverting_a_change_restores_the_key(ws):
    before = keys(ws)
    path = ws.path / "packages/mid/src/mid/__init__.py"
    original = path.read_text()
    path.write_text(original + "# edited\n")
    assert keys(ws) != before
    path.write_text(original)
    assert keys(ws) == before


def test_ignored_files_are_not_inputs(ws):
    before = keys(ws)
    ws.write("packages/base/src/base/__pycache__/x.cpython-311.pyc", "junk")  # .gitignore
    ws.write("packages/base/notes.tmp", "scratch")
    ws.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n[tool.yard]\nignore = ["*.tmp"]\n',
    )
    assert changed(before, keys(ws)) == []


def test_member_ignore_globs_leave_tests_out(ws):
    path = ws.path / "packages/other/pyproject.toml"
    path.write_text(path.read_text() + '[tool.yard]\nignore = ["tests"]\n')
    before = keys(ws)
    ws.write("packages/other/tests/test_other.py", "import other\nassert True\n")
    assert changed(before, keys(ws)) == []
    ws.write("packages/other/src/other/__init__.py", "Y = 2\n")
    assert changed(before, keys(ws)) == ["other"]


def test_a_pyproject_change_is_an_input(ws):
    before = keys(ws)
    path = ws.path / "packages/other/pyproject.toml"
    path.write_text(path.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    assert changed(before, keys(ws)) == ["other"]


def test_a_lock_entry_in_the_closure_changes_exactly_its_users(ws):
    before = keys(ws)
    # tiny is reached by base through six: base and its dependents change, other does not
    bumped = LOCK.replace('name = "tiny"\nversion = "2.0.0"', 'name = "tiny"\nversion = "2.0.1"')
    assert bumped != LOCK
    assert changed(before, keys(ws, lock=bumped)) == ["base", "leaf", "mid"]


def test_lock_entries_outside_the_closure_do_not_count(ws):
    before = keys(ws)
    dev = LOCK.replace('name = "devtool"\nversion = "1.0.0"', 'name = "devtool"\nversion = "1.1"')
    assert changed(before, keys(ws, lock=dev)) == []  # dev groups never reach a wheel
    other = LOCK.replace(
        'name = "unrelated"\nversion = "3.0.0"', 'name = "unrelated"\nversion = "4"'
    )
    assert changed(before, keys(ws, lock=other)) == ["other"]


def test_a_hash_only_lock_change_counts(ws):
    before = keys(ws)
    rehashed = LOCK.replace(
        'name = "six"\nversion = "1.16.0"\nsource = { registry = "https://pypi.org/simple" }\n',
        'name = "six"\nversion = "1.16.0"\nsource = { registry = "https://pypi.org/simple" }\n'
        'sdist = { url = "https://x/six.tar.gz", hash = "sha256:00", size = 1 }\n',
    )
    assert changed(before, keys(ws, lock=rehashed)) == ["base", "leaf", "mid"]


def test_the_toolchain_is_in_every_key(ws):
    before = keys(ws)
    newer = TOOLS._replace(backends={"hatchling": "hatchling==1.28.0"})
    assert changed(before, keys(ws, tools=newer)) == ["base", "leaf", "mid", "other"]
    assert changed(before, keys(ws, tools=TOOLS._replace(uv="uv 0.14.0"))) == sorted(before)
    py = TOOLS._replace(python="CPython 3.12.1 linux")
    assert changed(before, keys(ws, tools=py)) == sorted(before)
    assert changed(before, keys(ws, options=("no-sources",))) == sorted(before)


def test_a_missing_lock_is_stable_and_a_bad_one_an_error(ws):
    assert keys(ws, no_lock=True) == keys(ws, no_lock=True)
    assert keys(ws, no_lock=True) != keys(ws)
    with pytest.raises(YardError, match=r"uv\.lock:1: invalid TOML"):
        keys(ws, lock="not = [valid")


def test_a_run_time_cycle_shares_its_changes_and_nothing_else(ws):
    """base's ``all`` extra lists leaf (leaf -> mid -> base -> leaf): a change anywhere in
    the cycle changes every key in it; other stays."""
    ws.member(
        "packages/base", "base", extra=HATCH + '[project.optional-dependencies]\nall = ["leaf"]\n'
    )
    before = keys(ws)
    assert keys(ws) == before  # stable
    ws.write("packages/leaf/src/leaf/extra.py", "X = 1\n")
    assert changed(before, keys(ws)) == ["base", "leaf", "mid"]
    ws.remove("packages/leaf/src/leaf/extra.py")
    assert keys(ws) == before
