"""Small generated uv workspaces in real git repositories, and yard run as a user runs it."""

from __future__ import annotations

import contextlib
import io
import json
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
