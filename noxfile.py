"""The CI entry points of the Switchyard workspace.

``uv run nox`` runs the default sessions (lint, typecheck, tests): it is the project's test
command, and ``.ci/run`` calls exactly that. Every session builds its environment with uv from
the committed ``uv.lock`` (``uv sync --frozen``), so what CI tests is what the lock says.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
MEMBER_GLOBS = ("packages/*", "packages/modules/*", "services/*", "tools/*")


def members() -> list[Path]:
    """Every workspace member folder (one holding a pyproject.toml), sorted."""
    found = {p.parent for g in MEMBER_GLOBS for p in ROOT.glob(f"{g}/pyproject.toml")}
    return sorted(found)


def sync(session: nox.Session, *args: str) -> None:
    """Install the whole workspace into the session's venv from uv.lock, exactly."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--all-packages",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    sync(session, "--only-group", "dev")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy (strict, pydantic plugin) on every member's src/ and the noxfile."""
    sync(session)
    sources = [str(m / "src") for m in members() if (m / "src").is_dir()]
    session.run("mypy", *sources, "noxfile.py", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Every member's tests/ and the root tests/, in one pytest run."""
    sync(session)
    paths = [str(m / "tests") for m in members() if (m / "tests").is_dir()]
    if (ROOT / "tests").is_dir() and any((ROOT / "tests").glob("test_*.py")):
        paths.append("tests")
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    if "SWITCHYARD_REDIS_URL" in os.environ:
        env["SWITCHYARD_REDIS_URL"] = os.environ["SWITCHYARD_REDIS_URL"]
    session.run("pytest", *paths, *session.posargs, env=env)
