"""The toolchain a build runs with: uv, the Python that builds, and pinned build backends.

uv resolves a member's ``build-system.requires`` afresh for every build, so the backend's
version can change under an unchanged source tree. yard resolves each distinct requirement set
once (``uv pip compile``), keeps the pins for a day in its cache folder, hands them to every
build as ``--build-constraints`` and puts them in the keys: a key always names the backend
version that the build really used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from ._errors import YardError
from ._keys import Toolchain
from ._workspace import Workspace

DEFAULT_REQUIRES: Final = ("setuptools>=40.8.0",)
"""PEP 517's default when a pyproject has no ``[build-system]`` table."""
BACKEND_TTL: Final = 24 * 3600.0
"""Seconds a backend resolution is reused before yard asks the index again."""


class BuildSpec(NamedTuple):
    """What yard needs from a member's pyproject to build it."""

    requires: str
    """``build-system.requires``, one requirement a line, sorted (a toolchain backend key)."""
    package: bool
    """False for ``[tool.uv] package = false``: uv does not build the member."""


def build_specs(workspace: Workspace, names: Iterable[str]) -> dict[str, BuildSpec]:
    """Each named member's build requirements, read from its pyproject."""
    out: dict[str, BuildSpec] = {}
    for name in names:
        member = workspace.members[name]
        path = member.directory / "pyproject.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise YardError(f"{path}: cannot read: {exc}") from None
        system = data.get("build-system")
        requires: tuple[str, ...] = DEFAULT_REQUIRES
        if isinstance(system, dict) and isinstance(system.get("requires"), list):
            requires = tuple(str(r) for r in system["requires"])
        package = data.get("tool", {}).get("uv", {}).get("package")
        buildable = package is not False and (isinstance(system, dict) or package is True)
        out[name] = BuildSpec("\n".join(sorted(requires)), buildable)
    return out


def uv_version(folder: Path | None = None) -> str:
    """``uv --version``; a missing uv is one clear error.

    With ``folder``, the answer is kept there under the uv binary's path, size and mtime, so a
    warm build does not start uv only to ask its version.
    """
    found = shutil.which("uv")
    stamp = ""
    if folder is not None and found is not None:
        info = os.stat(found)
        stamp = f"{os.path.realpath(found)}\0{info.st_size}\0{info.st_mtime_ns}"
        memo = folder / f"uv-{hashlib.sha256(stamp.encode()).hexdigest()[:24]}.txt"
        try:
            return memo.read_text(encoding="utf-8").strip()
        except OSError:
            pass
    version = _ask_uv_version()
    if stamp and folder is not None:
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(version + "\n", encoding="utf-8")
            os.replace(tmp, memo)
    return version


def _ask_uv_version() -> str:
    try:
        result = subprocess.run(
            ["uv", "--version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise YardError(f"cannot run uv ({exc}); install uv: https://docs.astral.sh/uv/") from None
    if result.returncode:
        raise YardError(f"uv --version failed: {result.stderr.strip()}")
    return result.stdout.strip()


def python_id(python: str) -> str:
    """Implementation, version, platform and machine of the building interpreter (a key can
    be shared between machines: an x86_64 wheel must not serve an aarch64 one)."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return (
            f"{platform.python_implementation()} {platform.python_version()} {sys.platform} "
            f"{platform.machine()}"
        )
    code = (
        "import platform,sys;print(platform.python_implementation(),platform.python_version(),"
        "sys.platform,platform.machine())"
    )
    try:
        result = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, check=False, timeout=30
        )
    except OSError as exc:
        raise YardError(f"cannot run the build Python {python}: {exc.strerror}") from None
    if result.returncode:
        raise YardError(f"the build Python {python} failed: {result.stderr.strip()[-200:]}")
    return result.stdout.strip()


def resolve_backends(
    requirement_sets: Iterable[str], *, python: str, ident: str, folder: Path
) -> dict[str, Path]:
    """The pinned constraints file of each requirement set, resolved or reused from ``folder``.

    ``ident`` (the uv and Python versions) is part of the file name: another toolchain
    resolves afresh.
    """
    out: dict[str, Path] = {}
    for requires in sorted(set(requirement_sets)):
        digest = hashlib.sha256(f"{requires}\n{ident}".encode()).hexdigest()[:32]
        path = folder / f"{digest}.txt"
        try:
            fresh = time.time() - path.stat().st_mtime < BACKEND_TTL
        except OSError:
            fresh = False
        if not fresh:
            _resolve(requires, path, python=python, stale_ok=path.is_file())
        out[requires] = path
    return out


def _resolve(requires: str, path: Path, *, python: str, stale_ok: bool) -> None:
    cmd = ["uv", "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate"]
    cmd += ["--python", python]
    try:
        result = subprocess.run(
            cmd, input=requires + "\n", capture_output=True, text=True, check=False, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        result = subprocess.CompletedProcess(cmd, 1, "", str(exc))
    if result.returncode:
        if stale_ok:  # offline: the previous pins are still what the last builds used
            return
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        what = ", ".join(requires.splitlines())
        raise YardError(f"cannot resolve the build backend requirements ({what}): {last}")
    pins = "".join(
        line + "\n" for line in result.stdout.splitlines() if line and not line.startswith("#")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(pins, encoding="utf-8")
    os.replace(tmp, path)


def toolchain(
    specs: Iterable[BuildSpec], *, python: str, folder: Path
) -> tuple[Toolchain, dict[str, Path]]:
    """The toolchain record for keys, and the constraints file for each requirement set."""
    uv = uv_version(folder)
    py = python_id(python)
    requirement_sets = (s.requires for s in specs)
    files = resolve_backends(requirement_sets, python=python, ident=f"{uv}\n{py}", folder=folder)
    backends = {req: path.read_text(encoding="utf-8").strip() for req, path in files.items()}
    return Toolchain(uv=uv, python=py, backends=backends), files


_VENV_LOCKS: Final[dict[Path, threading.Lock]] = {}
_LOCKS_LOCK: Final = threading.Lock()


def backend_python(constraint: Path, *, python: str, log: BinaryIO) -> Path | None:
    """The interpreter of a venv holding exactly the pinned backend of ``constraint``.

    It lives next to the pins (``<hash of the pins>.venv``), is made once (in a temporary
    folder, then renamed, so concurrent builds never see half a venv) and serves every build
    with these pins: a build environment as isolated as the one ``uv build`` makes afresh for
    each build, without making it each time. None when it cannot be made (the caller then
    runs ``uv build``).
    """
    try:
        pins = constraint.read_bytes()
    except OSError:
        return None
    venv = constraint.with_name(f"{hashlib.sha256(pins).hexdigest()[:24]}.venv")
    exe = venv / "bin" / "python"
    with _LOCKS_LOCK:
        lock = _VENV_LOCKS.setdefault(venv, threading.Lock())
    with lock:
        if (venv / "yard-ready").is_file():
            return exe
        tmp = venv.with_name(f"{venv.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
        env.pop("VIRTUAL_ENV", None)
        steps = [
            ["uv", "venv", "--quiet", "--python", python, str(tmp)],
            [
                "uv",
                "pip",
                "install",
                "--quiet",
                "--python",
                str(tmp / "bin" / "python"),
                "--no-deps",
                "-r",
                str(constraint),
            ],
        ]
        for cmd in steps:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            try:
                code = subprocess.run(
                    cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False, timeout=300
                ).returncode
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.write(f"yard: {exc}\n".encode())
                code = 1
            if code:
                shutil.rmtree(tmp, ignore_errors=True)
                return None
        (tmp / "yard-ready").write_bytes(b"")
        try:
            os.rename(tmp, venv)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
        return exe if (venv / "yard-ready").is_file() else None
