"""Small generated uv workspaces in real git repositories, and yard run as a user runs it."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from yard._cli import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Result:
    """What a user sees: the exit status, stdout and stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[str]:
        return self.out.split()


class Repo:
    """A uv workspace in a git repository, built file by file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.revs: dict[str, str] = {}
        """Named commits, for a generated history."""

    def write(self, rel: str, text: str = "") -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    def remove(self, rel: str) -> None:
        (self.path / rel).unlink()

    def member(
        self,
        folder: str,
        name: str,
        deps: tuple[str, ...] = (),
        *,
        extra: str = "",
        imports: tuple[str, ...] = (),
        version: str = "0.1.0",
    ) -> None:
        """A member with a pyproject, a src package importing ``imports``, and a test."""
        lines = ", ".join(f'"{d}"' for d in deps)
        pyproject = f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{lines}]\n'
        self.write(f"{folder}/pyproject.toml", pyproject + textwrap.dedent(extra))
        module = name.replace("-", "_").lower()
        body = "".join(f"import {m}\n" for m in imports)
        self.write(f"{folder}/src/{module}/__init__.py", body)
        self.write(f"{folder}/tests/test_{module}.py", f"import {module}\n")

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**GIT_ENV, "PATH": "/usr/bin:/bin:/usr/local/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def yard(self, *args: str, root: bool = True) -> Result:
        out, err = io.StringIO(), io.StringIO()
        argv = [*args, "--root", str(self.path)] if root else list(args)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return Result(code, out.getvalue(), err.getvalue())

    def affected(self, *args: str) -> dict[str, Any]:
        result = self.yard("affected", "--json", *args)
        assert result.code == 0, result.err
        data: dict[str, Any] = result.json()
        return data


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own yard cache folder, never the user's."""
    monkeypatch.setenv("YARD_CACHE_DIR", str(tmp_path_factory.mktemp("yard-cache")))


@pytest.fixture
def repo_at() -> type[Repo]:
    """The Repo class, to wrap a folder made some other way (a clone)."""
    return Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """An empty workspace root (members under packages/*) in a fresh git repository."""
    r = Repo(tmp_path / "ws")
    r.path.mkdir()
    r.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    r.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\n")
    r.git("init", "-q", "-b", "main")
    return r


@pytest.fixture
def chain(repo: Repo) -> Repo:
    """base <- mid <- leaf, plus an unrelated member, committed on main."""
    repo.member("packages/base", "base")
    repo.member("packages/mid", "mid", ("base",), imports=("base",))
    repo.member("packages/leaf", "leaf", ("mid",), imports=("mid",))
    repo.member("packages/other", "other")
    repo.commit("init")
    return repo


# --- Generated workspaces with real `uv lock`, one per pattern of the real world -------------

HATCH = (
    'requires-python = ">=3.11"\n'
    '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
)
DYNAMIC_HOOK = """\
from hatchling.metadata.plugin.interface import MetadataHookInterface


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata):
        metadata["dependencies"] = {deps!r}
        metadata["optional-dependencies"] = {optional!r}
"""


def uv_lock(repo: Repo, *args: str) -> None:
    """Lock the workspace with the real uv (skips the test when uv cannot reach an index)."""
    result = subprocess.run(
        ["uv", "lock", "--quiet", *args], cwd=repo.path, capture_output=True, text=True
    )
    if result.returncode and any(w in result.stderr.lower() for w in ("network", "dns", "connect")):
        pytest.skip(f"uv lock needs the package index: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr


def _lock_graph(text: str) -> set[tuple[str, str, str, str | None]]:
    """The member-to-member edges uv.lock records: (member, target, kind, extra or group)."""
    import tomllib

    data = tomllib.loads(text)
    packages = data.get("package", [])
    members = set(data.get("manifest", {}).get("members", ())) or {
        p["name"] for p in packages if {"editable", "virtual"} & set(p.get("source", {}))
    }
    edges = set()
    for package in packages:
        name = package["name"]
        if name not in members or not {"editable", "virtual"} & set(package["source"]):
            continue
        tables = [("dependency", {None: package.get("dependencies", [])})]
        tables.append(("optional", package.get("optional-dependencies", {})))
        tables.append(("group", package.get("dev-dependencies", {})))
        for kind, lists in tables:
            for label, refs in lists.items():
                for ref in refs:
                    if ref["name"] in members and ref["name"] != name:
                        edges.add((name, ref["name"], kind, label))
    return edges


def _yard_graph(data: dict[str, Any]) -> set[tuple[str, str, str, str | None]]:
    """The same edges from ``yard graph --format json`` (entry-point edges are yard's own)."""
    return {
        (m["name"], e["to"], e["kind"], e.get("extra") or e.get("group"))
        for m in data["members"]
        for e in m["edges"]
        if e["kind"] != "entry-point"
    }


@pytest.fixture
def relock() -> Any:
    """``relock(repo, *args)`` runs the real ``uv lock`` in the repository."""
    return uv_lock


@pytest.fixture
def lock_graph() -> Any:
    """(member, target, kind, extra or group) for each member-to-member edge of a uv.lock."""
    return _lock_graph


@pytest.fixture
def yard_graph() -> Any:
    """The same edges from ``yard graph --format json`` output."""
    return _yard_graph


def new_repo(path: Path) -> Repo:
    repo = Repo(path)
    path.mkdir(parents=True)
    repo.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    repo.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\n")
    repo.git("init", "-q", "-b", "main")
    return repo


def locked_member(repo: Repo, name: str, deps: tuple[str, ...] = (), extra: str = "") -> None:
    """A buildable member whose internal requirements have workspace sources, as uv wants."""
    internal = set(deps) | set(re.findall(r'"([a-z][a-z0-9-]*)"', extra)) - {name}
    sources = "".join(f"{d} = {{ workspace = true }}\n" for d in sorted(internal))
    python, build = HATCH.split("\n", 1)
    tail = build + (f"[tool.uv.sources]\n{sources}" if sources else "")
    repo.member(f"packages/{name}", name, deps, extra=f"{python}\n{extra}{tail}")


def extra_cycle(path: Path) -> Repo:
    """core's ``all`` extra lists the plugins that depend on it; app uses one plugin."""
    repo = new_repo(path)
    locked_member(
        repo, "core", extra='[project.optional-dependencies]\nall = ["plug-a", "plug-b"]\n'
    )
    locked_member(repo, "plug-a", ("core",))
    locked_member(repo, "plug-b", ("core",))
    locked_member(repo, "app", ("plug-a",))
    uv_lock(repo)
    repo.commit("extra cycle")
    return repo


def group_cycle(path: Path) -> Repo:
    """lib's test group uses testutils, which depends on lib."""
    repo = new_repo(path)
    locked_member(repo, "lib", extra='[dependency-groups]\ntest = ["testutils"]\n')
    locked_member(repo, "testutils", ("lib",))
    locked_member(repo, "user", ("lib",))
    uv_lock(repo)
    repo.commit("group cycle")
    return repo


def dynamic_dependencies(path: Path) -> Repo:
    """dyn's dependencies and extras come from a hatch metadata hook (core, and lib in the
    extra ``x``); top depends on dyn."""
    repo = new_repo(path)
    locked_member(repo, "core")
    locked_member(repo, "lib")
    repo.write(
        "packages/dyn/pyproject.toml",
        '[project]\nname = "dyn"\nversion = "0.1.0"\n'
        'dynamic = ["dependencies", "optional-dependencies"]\n'
        + HATCH
        + "[tool.uv.sources]\ncore = { workspace = true }\nlib = { workspace = true }\n"
        "[tool.hatch.metadata.hooks.custom]\n",
    )
    repo.write("packages/dyn/src/dyn/__init__.py", "import core\n")
    hook = DYNAMIC_HOOK.format(deps=["core"], optional={"x": ["lib"]})
    repo.write("packages/dyn/hatch_build.py", hook)
    locked_member(repo, "top", ("dyn",))
    uv_lock(repo)
    repo.commit("dynamic")
    return repo


def history(path: Path) -> tuple[Repo, dict[str, str]]:
    """Three locked commits: ``base`` (a, b, c; c -> b -> a), ``head`` (b removed, c -> a,
    d added: d -> c), ``later`` (checked out: e added, d removed)."""
    repo = new_repo(path)
    locked_member(repo, "a")
    locked_member(repo, "b", ("a",))
    locked_member(repo, "c", ("b",))
    locked_member(repo, "z")
    uv_lock(repo)
    revs = {"base": repo.commit("base")}
    shutil.rmtree(repo.path / "packages/b")
    locked_member(repo, "c", ("a",))
    locked_member(repo, "d", ("c",))
    uv_lock(repo)
    revs["head"] = repo.commit("head")
    shutil.rmtree(repo.path / "packages/d")
    locked_member(repo, "e", ("a",))
    uv_lock(repo)
    revs["later"] = repo.commit("later")
    return repo, revs


@pytest.fixture(scope="session")
def patterns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Repo]:
    """Each pattern in its own git repository, locked by the real uv, made once a session."""
    if shutil.which("uv") is None:  # pragma: no cover - uv runs this project's CI
        pytest.skip("uv is not installed")
    base = tmp_path_factory.mktemp("patterns")
    made = {
        "extra-cycle": extra_cycle(base / "extra-cycle"),
        "group-cycle": group_cycle(base / "group-cycle"),
        "dynamic": dynamic_dependencies(base / "dynamic"),
    }
    made["history"], made["history"].revs = history(base / "history")
    return made
