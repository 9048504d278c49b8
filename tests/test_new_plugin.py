"""`yard new plugin NAME` in a copy of this workspace, then exactly what a plugin author runs.

The copy holds the workspace's files as they are now (tracked and untracked, not ignored), in a
fresh git repository with one commit, so that `yard affected --base HEAD` sees just what
`yard new` made. Its environment is built by `uv run --all-packages --exact` from the warm uv
cache. Copy and environment live at one fixed place per user, under a lock, and a run rewrites
only the files that changed, so a later run finds the members' editable installs fresh and
rebuilds only what changed, and `--exact` removes whatever an earlier run left. On a busy
2-core machine the module takes 80-100 s the first time (16 editable builds), 30-50 s after.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # over a minute where the environment is built from scratch

WORKSPACE = Path(__file__).resolve().parents[1]
PLACE = Path(tempfile.gettempdir()) / f"switchyard-test-new-plugin-{os.getuid()}"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def environment() -> dict[str, str]:
    """This process's environment less what points at the real workspace or its venv."""
    drop = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "YARD_CACHE_DIR")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("SWITCHYARD_", "UV_OFFLINE", "PYTEST_"))
    }
    return {**env, **GIT_ENV, "PYTHONDONTWRITEBYTECODE": "1"}


class Copy:
    """The copied workspace, and commands run in it as a person runs them."""

    def __init__(self, root: Path, venv: Path) -> None:
        self.root = root
        self.venv = venv
        self.env = {**environment(), "UV_PROJECT_ENVIRONMENT": str(venv)}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}")
        return result

    def uv(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("uv", "run", "--all-packages", "--exact", "--quiet", *argv, check=check)

    def installed(self, command: str, *argv: str) -> subprocess.CompletedProcess[str]:
        """A command of the synced environment, run without asking uv to sync again."""
        return self.run(str(self.venv / "bin" / command), *argv, check=False)

    def status(self) -> str:
        return self.run("git", "status", "--porcelain", "--untracked-files=all").stdout


def copy_workspace(target: Path) -> None:
    """Make ``target`` hold exactly the workspace's files, leaving alone the ones that are
    already the same: uv judges an editable install fresh by its files' ctimes, which a copy
    cannot keep, so only files that changed since the last run are written."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=WORKSPACE,
        capture_output=True,
        check=True,
    ).stdout.decode()
    wanted = {
        relative
        for relative in filter(None, listed.split("\0"))
        if (WORKSPACE / relative).is_file() and not relative.startswith("packages/modules/demo/")
    }  # not deleted in the working tree, not a leftover of a manual try
    shutil.rmtree(target / ".git", ignore_errors=True)
    for folder, dirnames, filenames in os.walk(target, topdown=False):
        if Path(folder).is_relative_to(target / ".mypy_cache"):
            continue  # kept, for a quicker mypy run
        for name in filenames:
            path = Path(folder, name)
            if path.relative_to(target).as_posix() not in wanted:
                path.unlink()
        for name in dirnames:
            with contextlib.suppress(OSError):
                Path(folder, name).rmdir()  # only when empty
    for relative in sorted(wanted):
        source, destination = WORKSPACE / relative, target / relative
        if destination.is_file() and destination.read_bytes() == source.read_bytes():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


@pytest.fixture(scope="module")
def ws() -> Iterator[Copy]:
    if shutil.which("uv") is None or shutil.which("git") is None:  # pragma: no cover
        pytest.skip("missing service: uv and git on PATH")
    PLACE.mkdir(exist_ok=True)
    with open(PLACE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run waits here for this one
        copy = Copy(PLACE / "workspace", PLACE / "venv")
        copy_workspace(copy.root)
        copy.run("git", "init", "-q", "-b", "main")
        copy.run("git", "add", "-A")
        copy.run("git", "commit", "-q", "-m", "the workspace as it is")
        made = copy.uv("yard", "new", "plugin", "demo")
        assert made.stdout.startswith("created packages/modules/demo (acme-demo, 6 files):")
        yield copy


def test_yard_new_writes_the_plugin_and_updates_the_lock(ws):
    folder = ws.root / "packages/modules/demo"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "src/acme_demo/__init__.py",
        "src/acme_demo/actions.py",
        "src/acme_demo/py.typed",
        "tests/test_demo_actions.py",
    ]
    assert ws.status().splitlines()[0] == " M uv.lock"
    lock = (ws.root / "uv.lock").read_text()
    assert '\nname = "acme-demo"\nversion = "0.1.0"\n' in lock
    assert 'source = { editable = "packages/modules/demo" }' in lock
    ws.run("uv", "lock", "--locked", "--offline")  # the lock is up to date with the new member


def test_switchyard_lists_and_calls_the_new_action(ws):
    listed = ws.uv("switchyard", "actions", "list", "--json")
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["demo.greet"]["distribution"] == "acme-demo"
    assert "geo.encode_geohash" in rows  # and the others are still there

    called = ws.uv("switchyard", "call", "demo.greet", "--data", '{"name": "Ada", "times": 2}')
    assert json.loads(called.stdout) == {"message": "Hello Hello, Ada!"}

    refused = ws.uv("switchyard", "call", "demo.greet", "--data", '{"name": ""}', check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error: invalid input for demo.greet: name: ")


def test_the_example_in_the_new_readme_prints_what_it_says(ws):
    readme = (ws.root / "packages/modules/demo/README.md").read_text()
    block = readme.split("```console\n", 1)[1].split("```", 1)[0]
    command, _, expected = block.partition("\n")
    assert command.startswith("$ uv run --all-packages switchyard call demo.greet ")
    argv = shlex.split(command.removeprefix("$ uv run --all-packages "))
    assert ws.uv(*argv).stdout == expected


def test_yard_affected_and_the_nox_sessions_pick_the_new_member_up(ws):
    result = json.loads(ws.uv("yard", "affected", "--base", "HEAD", "--json").stdout)
    assert result["changed"] == ["acme-demo"]
    # the worker and the gateway load every switchyard.actions plugin (an entry-point edge), so
    # they are affected
    assert result["affected"] == ["acme-demo", "switchyard-gateway", "switchyard-worker"]
    assert "packages/modules/demo/src/acme_demo/actions.py" in result["changed_files"]
    sessions = ws.uv("nox", "--list").stdout
    assert "test(member='acme-demo')" in sessions


def test_yard_check_passes_with_the_new_member(ws):
    checked = ws.uv("yard", "check")
    assert checked.stdout.strip().endswith("member(s), imports match declared dependencies")
    graph = json.loads(ws.uv("yard", "graph", "--format", "json").stdout)
    demo = next(m for m in graph["members"] if m["name"] == "acme-demo")
    assert demo["path"] == "packages/modules/demo"
    assert demo["depends_on"] == ["switchyard"]


def test_the_generated_plugin_passes_its_tests_and_the_linters(ws):
    code = (ws.root / "packages/modules/demo/tests/test_demo_actions.py").read_text()
    count, idle = unchecked_tests(code)
    assert count >= 4
    assert idle == []  # so that passing means something
    tests = ws.uv("pytest", "-q", "-p", "no:cacheprovider", "packages/modules/demo/tests")
    assert " passed" in tests.stdout
    assert "failed" not in tests.stdout
    ws.uv("ruff", "check", "--no-cache", "packages/modules/demo")
    ws.uv("ruff", "format", "--check", "--no-cache", "packages/modules/demo")
    typed = ws.uv("mypy", "packages/modules/demo/src")  # strict, the root's config
    assert typed.stdout.startswith("Success: no issues found in 2 source files")


@pytest.mark.parametrize("name", ["Demo2", "demo-two", "2demo", "demo__two", "demo_"])
def test_a_bad_name_is_refused_in_one_line(ws, name):
    before = ws.status()
    refused = ws.installed("yard", "new", "plugin", name)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"yard: error: invalid name {name!r} for template 'plugin': use lowercase letters, "
        "digits and single underscores, starting with a letter (it prefixes the action names, "
        "NAME.verb_noun)\n"
    )
    assert ws.status() == before


@pytest.mark.parametrize("name", ["demo", "auth"])
def test_an_existing_name_is_refused_in_one_line(ws, name):
    before = ws.status()
    refused = ws.installed("yard", "new", "plugin", name)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"yard: error: packages/modules/{name} already exists: "
        "choose another name or remove it first\n"
    )
    assert ws.status() == before


DOCS = WORKSPACE / "docs"
SOURCED_DOCS = {"adding-a-plugin.md": 10, "yard-new.md": 1}
"""Docs whose code blocks must each name their source, with how many blocks they have at least."""
SOURCE_MARK = re.compile(r"^<!-- from (\S+) -->$")
ELIDED = re.compile(r"^\s*# \.\.\.$", re.MULTILINE)


def guide_blocks(doc: str = "adding-a-plugin.md") -> list[tuple[int, str, str | None, str]]:
    """(line, language, source named in the comment just above or None, code) per block."""
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
    blocks: list[tuple[int, str, str | None, str]] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("```") and len(lines[i]) > 3:
            mark = SOURCE_MARK.match(lines[i - 1]) if i else None
            end = lines.index("```", i + 1)
            code = "\n".join(lines[i + 1 : end]) + "\n"
            blocks.append((i + 1, lines[i][3:], mark.group(1) if mark else None, code))
            i = end
        i += 1
    return blocks


def first_missing_part(code: str, text: str) -> str | None:
    """The first part of a block (parts split at `# ...` lines) not found in ``text`` after
    the part before it; None when the whole block is there, in order."""
    position = 0
    for raw in ELIDED.split(code):
        part = raw.strip("\n")
        found = text.find(part, position)
        if found < 0:
            return part
        position = found + len(part)
    return None


@pytest.mark.parametrize(("doc", "at_least"), sorted(SOURCED_DOCS.items()))
def test_the_docs_show_only_code_that_is_in_the_workspace(ws, doc, at_least):
    blocks = guide_blocks(doc)
    checked = 0
    for line, language, source, code in blocks:
        if language == "console":
            continue
        assert source is not None, f"{doc}:{line}: a {language} block needs a source"
        missing = first_missing_part(code, (ws.root / source).read_text(encoding="utf-8"))
        assert missing is None, f"{doc}:{line}: not in {source}:\n{missing}"
        checked += 1
    assert checked >= at_least


def unchecked_tests(code: str) -> tuple[int, list[str]]:
    """How many test functions ``code`` defines, and the names of those with neither an
    ``assert`` nor a ``pytest.raises``."""
    tests = [
        node
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    idle = [
        test.name
        for test in tests
        if not any(
            isinstance(node, ast.Assert)
            or (isinstance(node, ast.Attribute) and node.attr == "raises")
            for node in ast.walk(test)
        )
    ]
    return len(tests), idle


def test_the_guide_shows_the_plugin_yard_new_writes():
    demo = {s for _, _, s, _ in guide_blocks() if s and s.startswith("packages/modules/demo/")}
    assert demo == {  # as `yard new plugin demo` wrote them, checked in the test above
        "packages/modules/demo/pyproject.toml",
        "packages/modules/demo/src/acme_demo/actions.py",
        "packages/modules/demo/tests/test_demo_actions.py",
    }
    # the tests it shows (which the generated plugin runs) check what they claim
    shown = [c for _, _, s, c in guide_blocks() if s and s.endswith("/test_demo_actions.py")]
    counts = [unchecked_tests(code) for code in shown]
    assert sum(count for count, _ in counts) >= 2
    assert [name for _, idle in counts for name in idle] == []


def test_a_test_that_checks_nothing_is_found():
    code = (
        "def test_calls():\n    run(greet, {})\n\n"
        "def test_asserts():\n    assert run(greet, {})\n\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        run(greet, {})\n"
    )
    assert unchecked_tests(code) == (3, ["test_calls"])


def test_the_block_check_fails_on_drift_and_on_reordered_parts():
    text = "a = 1\nb = 2\nc = 3\n"
    assert first_missing_part("a = 1\nb = 2\n", text) is None
    assert first_missing_part("a = 1\n# ...\nc = 3\n", text) is None
    assert first_missing_part("a = 1\nc = 3\n", text) == "a = 1\nc = 3"
    assert first_missing_part("c = 3\n# ...\na = 1\n", text) == "a = 1"


def test_the_guide_shows_what_listing_and_calling_the_new_action_print(ws):
    block = next(
        code
        for _, language, _, code in guide_blocks()
        if language == "console" and "switchyard actions list | grep demo" in code
    )
    lines = block.splitlines()
    listed = ws.uv("switchyard", "actions", "list").stdout
    real = next(x for x in listed.splitlines() if x.startswith("demo.greet "))
    assert lines[1].split() == real.split()  # name, distribution, the queue it is routed to
    call = lines[2]
    shown = "\n".join(lines[3 : lines.index(next(x for x in lines[3:] if x.startswith("$ ")))])
    argv = shlex.split(call.removeprefix("$ uv run --all-packages "))
    assert ws.uv(*argv).stdout == shown + "\n"
