"""A git commit's files below the workspace root, read from git objects (no checkout).

``yard affected --head REV`` reads the workspace as of REV, and the base of a change as of
its merge base: the member globs are matched against the commit's tree as ``glob`` matches
them on disk, and the pyproject files and uv.lock are read as blobs, in two git processes
(``ls-tree``, then one ``cat-file --batch`` for every file wanted).
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from collections.abc import Iterable
from fnmatch import translate
from pathlib import Path

from . import _git
from ._errors import GitError, WorkspaceError
from ._snapshot import Snapshot, key
from ._workspace import (
    Built,
    Workspace,
    assemble,
    build_members,
    hidden,
    member_folders,
    workspace_spec,
)

_IGNORABLE = (".pyc", ".pyo")


class Tree:
    """The files of commit ``rev`` in the folder ``root`` (paths relative to it)."""

    __slots__ = ("_blobs", "_children", "_dirs", "_root", "oid", "rev")

    def __init__(self, root: Path, rev: str) -> None:
        _git.check_refs(rev)
        self._root = root
        self.rev = rev
        found = _git.run(root, "rev-parse", "--verify", "--quiet", f"{rev}:./")
        if found.returncode:
            known = _git.run(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
            if known.returncode == 0:
                raise GitError(f"{root} did not exist at {rev}: no workspace to read there")
            if known.stderr.strip():  # not a repository, ...
                raise _git.failure(root, known, rev)
            raise GitError(f"unknown git ref {rev!r}; check the name (git branch -a, git tag)")
        self.oid = found.stdout.decode().strip()
        """The id of the root folder's tree in the commit: what the workspace is read from."""
        self._blobs: dict[str, str] | None = None
        self._children: dict[str, set[str]] = {}
        self._dirs: set[str] = set()

    def _list(self) -> dict[str, str]:
        """The commit's files (path -> blob id), listed once, when first needed."""
        if self._blobs is not None:
            return self._blobs
        result = _git.run(self._root, "ls-tree", "-r", "-z", "--full-tree", self.oid)
        if result.returncode:
            raise _git.failure(self._root, result, self.rev)
        blobs: dict[str, str] = {}
        children: dict[str, set[str]] = {"": set()}
        for entry in result.stdout.decode("utf-8", "surrogateescape").split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            _mode, kind, oid = meta.split(" ")
            if kind != "blob":  # a submodule: its files are not in this repository
                continue
            blobs[path] = oid
            folder, _, name = path.rpartition("/")
            while True:
                names = children.setdefault(folder, set())
                if name in names:  # a folder seen before: its parents are known
                    break
                names.add(name)
                if not folder:
                    break
                folder, _, name = folder.rpartition("/")
        self._blobs, self._children, self._dirs = blobs, children, set(children)
        return blobs

    def label(self, path: str) -> str:
        """How messages name a file of this commit: ``REV:path``, as git spells it."""
        return f"{self.rev}:{path}"

    def is_file(self, path: str) -> bool:
        return path in self._list()

    def is_dir(self, path: str) -> bool:
        self._list()
        return path in self._dirs

    def files_below(self, folder: str) -> list[str]:
        """Every file in ``folder`` and its subfolders."""
        prefix = f"{folder}/"
        return [p for p in self._list() if p.startswith(prefix)]

    def only_ignorable(self, folder: str) -> bool:
        """Whether a folder holds nothing but caches (as uv skips such member folders)."""
        return all(
            p.endswith(_IGNORABLE) or "/__pycache__/" in f"/{p}" for p in self.files_below(folder)
        )

    def file(self, path: str) -> bytes | None:
        """One file of the commit, or None when it has none there (no listing needed)."""
        result = _git.run(self._root, "cat-file", "blob", f"{self.oid}:{path}")
        return result.stdout if result.returncode == 0 else None

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The contents of those of ``paths`` that are files of the commit."""
        blobs = self._list()
        wanted = [p for p in dict.fromkeys(paths) if p in blobs]
        if not wanted:
            return {}
        fd, listing = tempfile.mkstemp(prefix="yard-", suffix=".oids")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write("".join(f"{blobs[p]}\n" for p in wanted))
            result = _git.run_with_input(self._root, listing, "cat-file", "--batch", "--buffer")
        finally:
            os.unlink(listing)
        if result.returncode:
            raise _git.failure(self._root, result, self.rev)
        found: dict[str, bytes] = {}
        for path, data in zip(wanted, _batch(result.stdout, len(wanted)), strict=True):
            if data is None:
                raise GitError(f"git cat-file: cannot read {self.label(path)}")
            found[path] = data
        return found

    def glob(self, pattern: str) -> list[str]:
        """What ``glob.glob(pattern, recursive=True, include_hidden=True)`` finds in a checkout
        of the commit, sorted, as normalized ``/``-separated relative paths."""
        pattern = posixpath.normpath(pattern)
        if pattern.startswith(("/", "../")) or pattern == "..":
            return []
        parts = [] if pattern == "." else pattern.split("/")
        self._list()
        current = {""}
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            found: set[str] = set()
            if part == "**":
                for folder in current:
                    found.add(folder)
                    found.update(self._below(folder, files=last))
            else:
                match = re.compile(translate(part)).match
                for folder in current:
                    for name in self._children.get(folder, ()):
                        if match(name):
                            found.add(f"{folder}/{name}" if folder else name)
            current = found if last else {p for p in found if p in self._dirs}
        return sorted(p or "." for p in current)

    def _below(self, folder: str, *, files: bool) -> set[str]:
        prefix = f"{folder}/" if folder else ""
        found = {d for d in self._dirs if d and d.startswith(prefix)}
        if files:
            found.update(p for p in self._list() if p.startswith(prefix))
        return found


def load_at(root: Path, rev: str) -> Workspace:
    """The workspace as of commit ``rev``: member globs matched against its tree, pyproject
    files and uv.lock read as blobs. What is built is cached under the tree's id (a commit
    never changes), and the records read are added to the cache."""
    tree = Tree(root, rev)
    snapshot = Snapshot(root, adding=True)
    built = snapshot.tree(tree.oid)
    if built is None:
        built = _build_at(root, tree, snapshot)
        snapshot.remember_tree(tree.oid, built)
        snapshot.save()

    def lock() -> str | None:
        data = tree.file("uv.lock")
        return None if data is None else data.decode("utf-8", "replace")

    return assemble(root, built, lock, tree.label("uv.lock"))


def _build_at(root: Path, tree: Tree, snapshot: Snapshot) -> Built:
    where = tree.label("pyproject.toml")
    content = tree.file("pyproject.toml")
    if content is None:
        raise WorkspaceError(f"{where}: no such file: {tree.rev} has no workspace root there")
    top = snapshot.record(content, where)
    spec = workspace_spec(top, where)
    folders = member_folders(tree.glob, spec["members"], spec["exclude"])
    contents = tree.read(f"{folder}/pyproject.toml" for folder in folders)
    found: list[tuple[str, int, bytes | None]] = []
    for folder in folders:
        data = contents.get(f"{folder}/pyproject.toml")
        if data is not None:
            found.append((folder, key(data), data))
        elif tree.is_dir(folder) and not hidden(folder) and not tree.only_ignorable(folder):
            raise WorkspaceError(
                f"{tree.label(folder)}: workspace member folder has no pyproject.toml "
                "(matched by [tool.uv.workspace] members); add one or exclude the folder"
            )
    return build_members(root, top, found, snapshot, tree=tree)


def read_at(root: Path, rev: str, paths: Iterable[str]) -> dict[str, bytes | None]:
    """A few files of commit ``rev`` (paths relative to ``root``), None for those it lacks,
    in one ``git cat-file --batch`` and without listing the commit's tree."""
    _git.check_refs(rev)
    wanted = list(dict.fromkeys(paths))
    if not wanted:
        return {}
    fd, listing = tempfile.mkstemp(prefix="yard-", suffix=".names")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write("".join(f"{rev}:./{p}\n" for p in wanted))
        result = _git.run_with_input(root, listing, "cat-file", "--batch", "--buffer")
    finally:
        os.unlink(listing)
    if result.returncode:
        raise _git.failure(root, result, rev)
    return dict(zip(wanted, _batch(result.stdout, len(wanted)), strict=True))


def _batch(data: bytes, count: int) -> list[bytes | None]:
    """The objects of ``git cat-file --batch`` output, None for each ``missing`` one."""
    found: list[bytes | None] = []
    pos = 0
    for _ in range(count):
        end = data.index(b"\n", pos)
        header = data[pos:end]
        if header.endswith((b" missing", b" ambiguous")):
            found.append(None)
            pos = end + 1
            continue
        size = int(header.rsplit(b" ", 1)[1])
        found.append(data[end + 1 : end + 1 + size])
        pos = end + 1 + size + 1
    return found
