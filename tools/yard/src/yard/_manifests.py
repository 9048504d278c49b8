"""Manifests for plugin consumers: a command the workspace declares, run beside the wheels.

yard knows nothing of any plugin system. A workspace that wants a file written for each member
consuming an entry-point group (a plugin manifest) declares, in the root pyproject::

    [tool.yard.manifest]
    group = "switchyard.actions"          # members with [tool.yard] consumes = [this group]
    command = ["switchyard", "manifest", "write", "{output}"]
    file = "{consumer}.manifest.json"      # written to the output folder

After a build, for each such consumer yard creates a fresh virtual environment, installs the
consumer's wheel, the plugin wheels that this build ships (the members providing the group),
and their internal dependencies' wheels, with the third-party versions uv.lock pins, and runs
the command there. Placeholders: ``{output}`` (the file to write), ``{python}``, ``{venv}``,
``{consumer}``. The result is cached under a key made of the installed wheels' keys and the
command, so an unchanged build writes it from the cache without creating an environment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from . import _lock, _toml
from ._cache import BuildCache, copy_atomic
from ._errors import WorkspaceError, YardError
from ._keys import runtime_closure
from ._workspace import Workspace

PLACEHOLDERS = frozenset({"output", "python", "venv", "consumer"})


class ManifestConfig(NamedTuple):
    """``[tool.yard.manifest]`` of the root pyproject."""

    group: str
    command: tuple[str, ...]
    file: str


class ManifestResult(NamedTuple):
    consumer: str
    path: Path | None
    plugins: tuple[str, ...]
    state: str
    """``written``, ``cache`` or ``failed``."""
    seconds: float
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "consumer": self.consumer,
            "path": str(self.path) if self.path else None,
            "plugins": list(self.plugins),
            "state": self.state,
            "seconds": round(self.seconds, 3),
        }
        if self.error:
            data["error"] = self.error
        return data


def root_table(root: Path) -> tuple[dict[str, Any], str]:
    """The root pyproject's ``[tool.yard]`` table and the file's text (for line numbers)."""
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    data = _toml.parse(text, "pyproject.toml")
    table = data.get("tool", {}).get("yard", {})
    return (table if isinstance(table, dict) else {}), text


def manifest_config(root: Path) -> ManifestConfig | None:
    """The workspace's manifest step, or None when it declares none."""
    table, text = root_table(root)
    raw = table.get("manifest")
    if raw is None:
        return None

    def fail(key: str, message: str) -> WorkspaceError:
        line = _toml.line_of(text, key if key != "manifest" else "[tool.yard.manifest]")
        return WorkspaceError(f"pyproject.toml:{line}: tool.yard.manifest: {message}")

    if not isinstance(raw, dict):
        raise fail("manifest", "must be a table")
    group, command, file = raw.get("group"), raw.get("command"), raw.get("file")
    if not isinstance(group, str) or not group:
        raise fail("group", 'group must name an entry-point group, e.g. "myapp.plugins"')
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(c, str) and c for c in command)
    ):
        raise fail("command", "command must be a non-empty list of strings")
    if file is None:
        file = "{consumer}.manifest.json"
    if not isinstance(file, str) or "/" in file or not file.strip():
        raise fail("file", "file must be a file name (placeholders allowed: {consumer})")
    for part in (*command, file):
        try:
            part.format(**dict.fromkeys(PLACEHOLDERS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise fail("command", f"bad placeholder in {part!r} ({exc}); known: {known}") from None
    return ManifestConfig(group, tuple(command), file)


def lock_constraints(lock_text: str | None, members: Iterable[str]) -> str:
    """``name==version`` for every third-party package uv.lock pins to a single version."""
    if lock_text is None:
        return ""
    try:
        lock = _lock.parse_lock(lock_text)
    except _lock.LockError as exc:
        raise YardError(f"{exc}; fix or regenerate it with uv lock") from None
    skip = set(members)
    lines = []
    for name, indices in sorted(lock.by_name.items()):
        versions = {lock.packages[i].version for i in indices}
        if name in skip or len(versions) != 1 or None in versions:
            continue
        text = lock.packages[indices[0]].text
        if "source = { editable" in text or "source = { virtual" in text:
            continue
        lines.append(f"{name}=={versions.pop()}\n")
    return "".join(lines)


def install_set(workspace: Workspace, consumer: str, plugins: Iterable[str]) -> list[str]:
    """The members whose wheels a consumer's manifest environment holds."""
    return sorted(runtime_closure(workspace, [consumer, *plugins]))


def write_manifest(
    workspace: Workspace,
    config: ManifestConfig,
    *,
    consumer: str,
    plugins: Iterable[str],
    wheels: Mapping[str, Path],
    keys: Mapping[str, str],
    cache: BuildCache,
    out: Path,
    python: str,
) -> ManifestResult:
    """Write (or copy from the cache) the manifest of ``consumer`` shipping ``plugins``."""
    started = time.perf_counter()
    plugin_names = tuple(sorted(plugins))
    members = install_set(workspace, consumer, plugin_names)
    file = config.file.format(consumer=consumer)
    text = "\n".join(
        ["yard-manifest 1", consumer, file, *config.command] + [f"{m} {keys[m]}" for m in members]
    )
    key = hashlib.sha256(text.encode()).hexdigest()
    target = out / file
    entry = cache.lookup(key, (file,))
    if entry is not None:
        source = entry.path(file)
        assert source is not None
        copy_atomic(source, target)
        return ManifestResult(
            consumer, target, plugin_names, "cache", time.perf_counter() - started
        )
    folder = cache.root / "tmp" / f"manifest-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    try:
        error = _run(workspace, config, consumer, members, wheels, folder, file, python)
        if error:
            return ManifestResult(
                consumer, None, plugin_names, "failed", time.perf_counter() - started, error
            )
        stored = cache.store(key, [folder / file], {"member": f"manifest:{consumer}"})
        source = stored.path(file)
        assert source is not None
        copy_atomic(source, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return ManifestResult(consumer, target, plugin_names, "written", time.perf_counter() - started)


def _run(
    workspace: Workspace,
    config: ManifestConfig,
    consumer: str,
    members: list[str],
    wheels: Mapping[str, Path],
    folder: Path,
    file: str,
    python: str,
) -> str:
    """Create the environment and run the command; an error line, or "" on success."""
    venv = folder / "venv"
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    venv_python = bindir / ("python.exe" if os.name == "nt" else "python")
    lock_path = workspace.root / "uv.lock"
    lock_text = lock_path.read_text(encoding="utf-8") if lock_path.is_file() else None
    (folder / "constraints.txt").write_text(
        lock_constraints(lock_text, workspace.members), encoding="utf-8"
    )
    steps = [
        ["uv", "venv", "--quiet", "--python", python, str(venv)],
        [
            "uv", "pip", "install", "--quiet", "--python", str(venv_python),
            "-c", str(folder / "constraints.txt"), *(str(wheels[m]) for m in members),
        ],
    ]  # fmt: skip
    values = {
        "output": str(folder / file),
        "python": str(venv_python),
        "venv": str(venv),
        "consumer": consumer,
    }
    command = [part.format(**values) for part in config.command]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env = {**env, "VIRTUAL_ENV": str(venv), "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}"}
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    for step, what in ((steps[0], "uv venv"), (steps[1], "uv pip install"), (command, None)):
        if what is None and not os.path.isabs(step[0]):
            found = shutil.which(step[0], path=env["PATH"])
            step = [found or step[0], *step[1:]]
        offline = what == "uv pip install"  # from uv's cache first: no index round trips
        try:
            result = subprocess.run(
                [*step, "--offline"] if offline else step,
                cwd=workspace.root, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if offline and result.returncode:  # something is not in uv's cache yet
                result = subprocess.run(
                    step, cwd=workspace.root, env=env, capture_output=True, text=True, check=False
                )
        except OSError as exc:
            return f"manifest for {consumer}: cannot run {step[0]}: {exc.strerror}"
        if result.returncode:
            tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
            label = what or "the manifest command " + " ".join(config.command)
            return f"manifest for {consumer}: {label} exited with {result.returncode}: " + (
                " | ".join(tail) or "no output"
            )
    if not (folder / file).is_file():
        return (
            f"manifest for {consumer}: the command {' '.join(config.command)} wrote no "
            f"{{output}} file; check [tool.yard.manifest] command"
        )
    return ""


def providers(workspace: Workspace, group: str) -> dict[str, dict[str, str]]:
    """Each member providing entry points in ``group``: entry-point name -> value."""
    out: dict[str, dict[str, str]] = {}
    for name, member in workspace.members.items():
        if group not in member.provides:
            continue
        path = member.directory / "pyproject.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise YardError(f"{path}: cannot read: {exc}") from None
        table = data.get("project", {}).get("entry-points", {}).get(group, {})
        if isinstance(table, dict):
            out[name] = {str(k): str(v) for k, v in table.items()}
    return out
