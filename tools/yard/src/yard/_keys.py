"""Build cache keys: what a member's wheel is a function of, hashed.

A member's key covers, and only covers:

- its input files: the files in its folder that git tracks or would track (untracked files that
  git does not ignore count, since the build backend packs them too), less ``[tool.yard]
  ignore``, each by path and content (its pyproject.toml is one of them);
- the keys of the members it depends on at run time (``project.dependencies`` and extras;
  dependency groups are development-only and never reach a wheel); in a run-time cycle (a
  core package whose extra lists plugins that depend on it), one digest of the whole cycle
  stands for the members of the cycle;
- its locked third-party closure: the text of every ``uv.lock`` package block it reaches through
  the lock's own dependency lists (versions, sources, hashes, markers);
- the toolchain: the uv version, the Python that builds, and the build backend's resolved
  requirements (``hatchling==1.27.0`` and its own dependencies), which yard pins for the build.

Keys are SHA-256 hex digests of a small text that lists those parts, so a key changes when and
only when one of them does.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, NamedTuple

from . import _lock
from ._errors import YardError
from ._graph import components
from ._names import glob_match
from ._workspace import Workspace

KEY_FORMAT: Final = "yard-build-key 1"
RUNTIME_KINDS: Final = frozenset({"dependency", "optional"})
"""Edge kinds whose targets end up in a wheel's metadata (and so in its key)."""


class Toolchain(NamedTuple):
    """The tools a build runs with: part of every key."""

    uv: str
    """``uv --version`` output, e.g. ``uv 0.13.9 (x86_64-unknown-linux-gnu)``."""
    python: str
    """The building interpreter: implementation, version and platform."""
    backends: Mapping[str, str]
    """For each distinct ``build-system.requires`` (as its joined text), the resolved pins."""


class KeyParts(NamedTuple):
    """What one member's key is made of (kept in the cache entry, for people)."""

    files: tuple[tuple[str, str], ...]
    deps: tuple[tuple[str, str], ...]
    lock: str
    backend: str
    options: tuple[str, ...]

    def text(self, name: str, version: str | None, toolchain: Toolchain) -> str:
        lines = [KEY_FORMAT, f"member {name} {version or '-'}"]
        lines += [f"option {o}" for o in self.options]
        lines += [f"file {path} {digest}" for path, digest in self.files]
        lines += [f"dep {dep} {key}" for dep, key in self.deps]
        lines.append(f"lock {self.lock}")
        lines.append(f"uv {toolchain.uv}")
        lines.append(f"python {toolchain.python}")
        lines.append(f"backend {self.backend}")
        return "\n".join(lines) + "\n"


def runtime_deps(workspace: Workspace, name: str) -> list[str]:
    """The members ``name`` depends on directly at run time, sorted."""
    member = workspace.members[name]
    return sorted({e.to for e in member.edges if e.kind in RUNTIME_KINDS})


def runtime_closure(workspace: Workspace, names: Iterable[str]) -> set[str]:
    """``names`` and every member they reach through run-time dependencies."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(runtime_deps(workspace, name))
    return seen


def input_files(workspace: Workspace, names: Iterable[str]) -> dict[str, list[str]]:
    """For each named member, its input files as paths relative to its folder, sorted.

    The files git tracks plus untracked files it does not ignore, each given to the deepest
    member folder holding it, less the workspace's and the member's ``ignore`` globs. Outside
    a git repository every file below the folder counts, except hidden ones and caches.
    """
    wanted = list(names)
    by_path = {m.path: m.name for m in workspace.members.values()}
    out: dict[str, list[str]] = {name: [] for name in wanted}
    paths = sorted({workspace.members[n].path for n in wanted})
    listed = _git_files(workspace.root, paths)
    if listed is None:
        listed = _walk_files(workspace.root, paths)
    for path in listed:
        owner = _owner(path, by_path)
        if owner is None or by_path[owner] not in out:
            continue
        member = workspace.members[by_path[owner]]
        inner = path if owner == "." else path[len(owner) + 1 :]
        if glob_match(inner, workspace.config.ignore) or glob_match(inner, member.ignore):
            continue
        out[member.name].append(inner)
    for files in out.values():
        files.sort()
    return out


def _owner(path: str, by_path: Mapping[str, str]) -> str | None:
    folder = path
    while "/" in folder:
        folder = folder.rsplit("/", 1)[0]
        if folder in by_path:
            return folder
    return "." if "." in by_path else None


def _git_files(root: Path, paths: Sequence[str]) -> list[str] | None:
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    cmd = ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    try:
        result = subprocess.run(
            [*cmd, "--", *paths], capture_output=True, env=env, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode:
        return None
    return sorted({p for p in result.stdout.decode("utf-8", "surrogateescape").split("\0") if p})


_SKIP_DIRS: Final = frozenset({"__pycache__", "dist", "build", "node_modules"})


def _walk_files(root: Path, paths: Sequence[str]) -> list[str]:
    found: list[str] = []
    for rel in paths:
        base = root if rel == "." else root / rel
        for folder, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS]
            prefix = Path(folder).relative_to(root).as_posix()
            for filename in filenames:
                if not filename.startswith(".") and not filename.endswith((".pyc", ".pyo")):
                    found.append(filename if prefix == "." else f"{prefix}/{filename}")
    return sorted(set(found))


def file_digests(directory: Path, files: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Each existing file with the SHA-256 of its content (a deleted tracked file is no input)."""
    out: list[tuple[str, str]] = []
    for rel in files:
        try:
            with open(directory / rel, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        except OSError as exc:
            raise YardError(f"{directory / rel}: cannot read: {exc.strerror}") from None
        out.append((rel, digest))
    return tuple(out)


def lock_closures(lock_text: str | None, members: Iterable[str]) -> dict[str, str]:
    """For each member, a digest of the uv.lock blocks of its third-party run-time closure.

    The walk starts at the member's own block (dependencies and every extra, no development
    groups), follows each package's dependencies and the extras requested of it, and stops at
    other members, whose own keys cover their closures. Without a lock every digest is that
    of "no lock"; a member missing from the lock gets that of "not locked".
    """
    names = list(members)
    if lock_text is None:
        return {name: _digest("no lock") for name in names}
    try:
        lock = _lock.parse_lock(lock_text)
    except _lock.LockError as exc:
        raise YardError(f"{exc}; fix or regenerate it with uv lock") from None
    member_set = set(names) | _lock_members(lock)
    out: dict[str, str] = {}
    for name in names:
        starts = lock.by_name.get(name)
        if not starts:
            out[name] = _digest("not locked")
            continue
        seen: set[int] = set()
        visited: set[tuple[int, str]] = set()
        stack: list[tuple[int, str]] = []
        for index in starts:
            package = lock.packages[index]
            _lock.details(package, "uv.lock")
            refs = list(package.deps)
            for extra_refs in package.optional.values():
                refs.extend(extra_refs)
            stack.extend(_targets(lock, refs, member_set))
        while stack:
            state = stack.pop()
            if state in visited:
                continue
            visited.add(state)
            index, extra = state
            seen.add(index)
            package = lock.packages[index]
            _lock.details(package, "uv.lock")
            refs = list(package.optional.get(extra, ())) if extra else list(package.deps)
            stack.extend(_targets(lock, refs, member_set))
        out[name] = _digest("\n\0".join(sorted(lock.packages[i].text for i in seen)))
    return out


def _lock_members(lock: _lock.Lock) -> set[str]:
    """Packages the lock itself marks as workspace members (editable or virtual sources)."""
    found: set[str] = set()
    for package in lock.packages:
        head = package.text.split("\n", 4)
        if any(line.startswith(("source = { editable", "source = { virtual")) for line in head):
            found.add(package.name)
    return found


def _targets(
    lock: _lock.Lock, refs: Iterable[_lock.DepRef], members: set[str]
) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for ref in refs:
        for index in _lock._resolve(lock, ref):
            if lock.packages[index].name in members:
                continue
            out.append((index, ""))
            out.extend((index, extra) for extra in ref[3])
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def compute_keys(
    workspace: Workspace,
    names: Iterable[str],
    *,
    toolchain: Toolchain,
    requires: Mapping[str, str],
    options: Sequence[str] = (),
    lock_text: str | None = None,
) -> dict[str, tuple[str, KeyParts]]:
    """The key (and its parts) of each named member and of its run-time dependencies.

    ``requires`` maps each member to the text of its ``build-system.requires`` (a key of
    ``toolchain.backends``); ``options`` are build options that change the output
    (``no-sources``).
    """
    needed = runtime_closure(workspace, names)
    files = input_files(workspace, needed)
    closures = lock_closures(lock_text, needed)
    keys: dict[str, tuple[str, KeyParts]] = {}
    forward = {name: runtime_deps(workspace, name) for name in needed}

    def parts_of(name: str, inside: Collection[str], ring: str) -> KeyParts:
        return KeyParts(
            files=file_digests(workspace.members[name].directory, files[name]),
            deps=tuple(
                (dep, f"cycle {ring}" if dep in inside else keys[dep][0]) for dep in forward[name]
            ),
            lock=closures[name],
            backend=toolchain.backends[requires[name]],
            options=tuple(sorted(options)),
        )

    for group in components(forward):  # dependencies first
        ring = ""
        if len(group) > 1:
            # A run-time cycle: each member's key covers every member of the cycle (its
            # files, lock closure and the keys of what it needs outside the cycle).
            ring = _digest(
                "".join(
                    parts_of(n, group, "").text(n, workspace.members[n].version, toolchain)
                    for n in group
                )
            )
        for name in group:
            parts = parts_of(name, group if ring else (), ring)
            keys[name] = (
                _digest(parts.text(name, workspace.members[name].version, toolchain)),
                parts,
            )
    return keys
