"""Finding a uv workspace's members exactly as uv does, and reading their internal edges."""

from __future__ import annotations

import functools
import os
import posixpath
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _toml
from ._errors import WorkspaceError
from ._model import Edge, EdgeKind, Member
from ._names import glob_match, normalize
from ._pyproject import Record
from ._snapshot import Requirement, Snapshot, key

if TYPE_CHECKING:
    from ._tree import Tree

_BARE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_edge = tuple.__new__  # an Edge from a cached plain tuple, without Edge._make's checks
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_MAGIC = re.compile(r"[*?[]")
_WORKSPACE_TABLE = re.compile(r"^\[tool\.uv\.workspace\][ \t]*(?:#.*)?$", re.MULTILINE)

DEFAULT_GLOBAL_INPUTS: dict[str, tuple[str, ...] | None] = {
    "pyproject.toml": None,
    "noxfile.py": None,
    ".python-version": None,
}
"""Files outside the members that affect every member unless ``global-inputs`` says otherwise.

``None`` means every member; a tuple names the members.
"""


class Config(NamedTuple):
    """The workspace-wide ``[tool.yard]`` settings of the root pyproject."""

    ignore: tuple[str, ...]
    """Globs, relative to each member folder, of files that are no member's input."""
    global_inputs: Mapping[str, tuple[str, ...] | None]
    """Globs, relative to the root, of files that affect all members (None) or named ones."""
    cycles: str = "warn"
    """What ``yard check`` does with a dependency cycle: ``warn``, ``error`` or ``allow``."""


class Workspace(NamedTuple):
    """A uv workspace: its root folder, its members by normalized name, its yard settings."""

    root: Path
    members: Mapping[str, Member]
    config: Config
    allow_unused: Mapping[str, tuple[str, ...]]
    """Per member, the declared internal dependencies ``yard check`` may find unused."""
    warnings: tuple[str, ...] = ()
    """What yard could not read and worked around, one line each (a member with dynamic
    dependencies that uv.lock has no entry for)."""

    def member(self, name: str) -> Member:
        """The member of that name (any spelling), or a WorkspaceError listing the names."""
        found = self.members.get(normalize(name))
        if found is None:
            known = ", ".join(sorted(self.members)) or "none"
            raise WorkspaceError(f"no workspace member named {name!r} (members: {known})")
        return found


def find_root(start: Path) -> Path:
    """The workspace root enclosing ``start``: the nearest folder up whose pyproject.toml has
    ``[tool.uv.workspace]``, else the nearest project (a workspace of one, as uv treats it)."""
    start = start.resolve()
    nearest_project: Path | None = None
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        try:
            text = pyproject.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if _WORKSPACE_TABLE.search(text):  # the usual spelling, found without a TOML parse
            return folder
        if "workspace" not in text and "project" not in text:
            continue
        data = _toml.parse(text, str(pyproject))
        if isinstance(data.get("tool", {}).get("uv", {}).get("workspace"), dict):
            return folder
        if nearest_project is None and "project" in data:
            nearest_project = folder
    if nearest_project is not None:
        return nearest_project
    raise WorkspaceError(
        f"no pyproject.toml with [tool.uv.workspace] or [project] in {start} or any parent; "
        "run yard inside a uv workspace or pass --root DIR"
    )


def load_workspace(root: Path, *, rev: str | None = None) -> Workspace:
    """Read the workspace whose root pyproject.toml is in ``root``: from the files there, or,
    with ``rev``, as of that git commit (from git objects, without a checkout)."""
    root = Path(os.path.abspath(root))
    if rev is not None:
        from ._tree import load_at

        return load_at(root, rev)
    snapshot = Snapshot(root)
    try:
        content = _read(f"{root}/pyproject.toml")
    except FileNotFoundError:
        raise WorkspaceError(
            f"{root}: no pyproject.toml here; pass the workspace root to --root"
        ) from None
    except OSError as exc:
        raise WorkspaceError(f"{root}/pyproject.toml: cannot read: {exc}") from None
    top_key = key(content)
    top = snapshot.record(content, "pyproject.toml", content_key=top_key)
    snapshot.remember_top(top_key)
    spec = workspace_spec(top, "pyproject.toml")
    found: list[tuple[str, int, bytes | None]] = []
    matches = functools.partial(_matches, str(root))
    for folder in member_folders(matches, spec["members"], spec["exclude"]):
        keyed = _member_key(root, folder, snapshot)
        if keyed is not None:
            found.append((folder, *keyed))
    signature = (top_key, tuple(f[0] for f in found), tuple(f[1] for f in found))
    built = snapshot.workspace(signature)
    if built is None:
        built = build_members(root, top, found, snapshot)
        if built[-1]:  # it depends on no more than the files (no symlinks were followed)
            snapshot.remember_workspace(signature, built)
    snapshot.save()
    return assemble(root, built, lambda: _lock_text(root), "uv.lock")


def workspace_spec(top: Record, where: str) -> dict[str, list[str]]:
    if top["workspace"] is None and not top["project"]:
        raise WorkspaceError(
            f"{where}: neither [tool.uv.workspace] nor [project]: not a uv workspace root"
        )
    spec: dict[str, list[str]] = top["workspace"] or {"members": [], "exclude": []}
    return spec


def assemble(root: Path, built: Built, lock: Callable[[], str | None], lock_name: str) -> Workspace:
    """The workspace from what was built (or cached), with the edges that uv.lock gives
    members whose dependencies are dynamic (read only when there are such members)."""
    members_data, ignore, global_inputs, allow, cycles, _ = built
    directory = str(root)
    members = {
        data[0]: Member(
            data[0],
            data[1],
            data[2],
            directory,
            tuple([_edge(Edge, edge) for edge in data[3]]),
            frozenset(data[4]),
            data[5],
            data[6],
            data[7],
        )
        for data in members_data
    }
    warnings: tuple[str, ...] = ()
    if any(data[7] for data in members_data):
        members, warnings = _with_lock_edges(members, lock(), lock_name)
    return Workspace(
        root=root,
        members=members,
        config=Config(ignore=ignore, global_inputs=global_inputs, cycles=cycles),
        allow_unused=allow,
        warnings=warnings,
    )


def _lock_text(root: Path) -> str | None:
    try:
        return Path(root, "uv.lock").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"uv.lock: cannot read: {exc}") from None


def _with_lock_edges(
    members: dict[str, Member], lock_text: str | None, where: str = "uv.lock"
) -> tuple[dict[str, Member], tuple[str, ...]]:
    """The members, those with dynamic dependencies given their edges from the lock; and the
    warnings for those the lock cannot speak for (see ``_dynamic``)."""
    from ._dynamic import lock_edges

    found, warnings = lock_edges(members, lock_text, where)
    for name, edges in found.items():
        members[name] = members[name]._replace(edges=members[name].edges + tuple(edges))
    return members, tuple(warnings)


Built = tuple[
    tuple[tuple[Any, ...], ...],
    tuple[str, ...],
    dict[str, tuple[str, ...] | None],
    dict[str, tuple[str, ...]],
    str,
    bool,
]
"""A workspace as marshal-able builtins: each member's fields (edges as plain tuples), the
ignore globs, the global inputs, the allowed unused dependencies, the cycle setting, and
whether it can be cached (it depends on the files' contents only)."""


def build_members(
    root: Path,
    top: Record,
    found: list[tuple[str, int, bytes | None]],
    snapshot: Snapshot,
    *,
    tree: Tree | None = None,
) -> Built:
    """Read the member records and build the members with their edges (from the files on
    disk, or from ``tree``, a commit's files, whose names messages give as ``REV:path``)."""
    records: dict[str, tuple[str, Record]] = {}
    if top["project"] and top["managed"]:
        records[top["name"]] = (".", top)
    for folder, content_key, content in found:
        path = f"{folder}/pyproject.toml"
        where = tree.label(path) if tree is not None else path
        if content is None and not snapshot.has(content_key):  # known by its stat only
            content = _read(f"{root}/{path}")
        record = snapshot.record(content or b"", where, content_key=content_key)
        if not record["managed"]:
            continue
        if not record["project"]:
            raise WorkspaceError(f"{where}:1: workspace member has no [project] table")
        name = record["name"]
        if name in records:
            raise WorkspaceError(
                f"{where}: member name {name!r} is also used by {records[name][0]}/pyproject.toml"
            )
        records[name] = (folder, record)

    builder = _EdgeBuilder(root, records, top["sources"], snapshot, tree)
    members = builder.members(top)
    global_inputs = _global_inputs(top, members)
    allow = {name: tuple(rec["allow_unused"]) for name, (_, rec) in records.items()}
    members_data = tuple(
        (
            m.name,
            m.version,
            m.path,
            tuple(tuple(e) for e in m.edges),
            tuple(sorted(m.provides)),
            m.consumes,
            m.ignore,
            m.dynamic,
        )
        for _, m in sorted(members.items())
    )
    cacheable = not builder.followed_paths
    return members_data, tuple(top["ignore"]), global_inputs, allow, top["cycles"], cacheable


def member_folders(
    matches: Callable[[str], list[str]], includes: list[str], excludes: list[str]
) -> list[str]:
    """The folders the member globs match (``matches`` finds a glob's matches), less the
    excluded ones, deduplicated (as uv does), as ``/``-separated paths relative to the root."""
    seen: set[str] = set()
    found: list[str] = []
    patterns = [e.rstrip("/") for e in excludes]
    for pattern in includes:
        for relative in matches(pattern):
            if relative in seen or relative == ".":
                continue
            seen.add(relative)
            if patterns and glob_match(relative, patterns):
                continue
            found.append(relative)
    return found


def _matches(root: str, pattern: str) -> list[str]:
    """What ``glob.glob(pattern, root_dir=root, recursive=True, include_hidden=True)`` finds,
    sorted, as normalized ``/``-separated relative paths.

    The usual member pattern, plain folder names then ``*`` (``packages/*``), is the listing
    of one folder and is answered with it; anything else goes to :mod:`glob`.
    """
    head, sep, last = pattern.rpartition("/")
    if sep and last == "*" and head and not head.startswith("/") and not _MAGIC.search(head):
        folder = os.path.normpath(head).replace(os.sep, "/")
        try:
            with os.scandir(f"{root}/{folder}") as entries:
                names = sorted(entry.name for entry in entries)
        except OSError:
            return []
        return names if folder == "." else [f"{folder}/{name}" for name in names]
    import glob

    prefix = root + os.sep
    cut = len(prefix)
    return [
        os.path.normpath(match[cut:]).replace(os.sep, "/")
        for match in sorted(
            glob.glob(glob.escape(prefix) + pattern, recursive=True, include_hidden=True)
        )
    ]


def _member_key(root: Path, folder: str, snapshot: Snapshot) -> tuple[int, bytes | None] | None:
    """The content key of a matched folder's pyproject.toml, with its bytes when they had to
    be read (None when the cache knew the file by its stat); None for what uv skips (a file,
    a hidden folder or one holding only caches); any other folder without one is an error."""
    absolute = f"{root}/{folder}"
    path = f"{absolute}/pyproject.toml"
    try:
        stat = os.stat(path)
        known = snapshot.known(path, stat)
        if known is not None:
            return known, None
        content = _read(path)
    except (FileNotFoundError, NotADirectoryError):
        if not os.path.isdir(absolute) or hidden(folder) or _only_ignorable(absolute):
            return None
        raise WorkspaceError(
            f"{folder}: workspace member folder has no pyproject.toml "
            "(matched by [tool.uv.workspace] members); add one or exclude the folder"
        ) from None
    except OSError as exc:
        raise WorkspaceError(f"{folder}/pyproject.toml: cannot read: {exc}") from None
    content_key = key(content)
    snapshot.learn(path, stat, content_key)
    return content_key, content


def hidden(folder: str) -> bool:
    return folder.rsplit("/", 1)[-1].startswith(".")


def _read(path: str) -> bytes:
    """A small file's bytes, without the buffered file object (a thousand of them add up)."""
    fd = os.open(path, _READ_FLAGS)
    try:
        chunks = [os.read(fd, 65536)]
        while len(chunks[-1]) == 65536:
            chunks.append(os.read(fd, 65536))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _only_ignorable(folder: str) -> bool:
    """Whether a folder holds nothing but caches (uv skips members with only ignored files)."""
    for _dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        if any(not f.endswith((".pyc", ".pyo")) for f in filenames):
            return False
    return True


def _global_inputs(top: Record, members: Mapping[str, Member]) -> dict[str, tuple[str, ...] | None]:
    found: dict[str, tuple[str, ...] | None] = dict(DEFAULT_GLOBAL_INPUTS)
    for pattern, targets in top["global_inputs"].items():
        for target in targets or ():
            if target not in members:
                raise WorkspaceError(
                    f"pyproject.toml: tool.yard.global-inputs.{pattern!r} names {target!r}, "
                    "which is not a workspace member"
                )
        found[pattern] = None if targets is None else tuple(targets)
    return found


class _EdgeBuilder:
    """Turns member records into members with their internal edges."""

    __slots__ = (
        "dirs",
        "followed_paths",
        "records",
        "root",
        "root_sources",
        "snapshot",
        "tree",
    )

    def __init__(
        self,
        root: Path,
        records: dict[str, tuple[str, Record]],
        root_sources: dict[str, list[dict[str, Any]]],
        snapshot: Snapshot,
        tree: Tree | None,
    ) -> None:
        self.root = root
        self.records = records
        self.root_sources = root_sources
        self.snapshot = snapshot
        self.tree = tree
        self.dirs = {name: folder for name, (folder, _) in records.items()}
        self.followed_paths = False
        """Whether a ``path`` source was compared on disk (symlinks: not a file content)."""

    def members(self, top: Record) -> dict[str, Member]:
        providers: dict[str, list[str]] = {}
        for name, (_, record) in self.records.items():
            for group in record["provides"]:
                providers.setdefault(group, []).append(name)
        out: dict[str, Member] = {}
        prefix = str(self.root)
        for name, (folder, record) in self.records.items():
            edges = self._declared(name, folder, record)
            consumes = top["consumes"] if folder == "." else record["consumes"]
            for group in consumes:
                edges.extend(
                    Edge(to=other, kind="entry-point", entry_point_group=group)
                    for other in sorted(providers.get(group, ()))
                    if other != name
                )
            out[name] = Member(
                name=name,
                version=record["version"],
                path=folder,
                root=prefix,
                edges=tuple(edges),
                provides=frozenset(record["provides"]),
                consumes=tuple(consumes),
                ignore=() if folder == "." else tuple(record["ignore"]),
                dynamic=tuple(record["dynamic"]),
            )
        return out

    def _declared(self, name: str, folder: str, record: Record) -> list[Edge]:
        edges: list[Edge] = []
        own = record["sources"] if folder != "." else {}
        lists: list[tuple[EdgeKind, str | None, str | None, list[tuple[str, str]]]] = [
            ("dependency", None, None, record["deps"])
        ]
        lists += [("optional", extra, None, reqs) for extra, reqs in record["optional"].items()]
        lists += [("group", None, group, reqs) for group, reqs in record["groups"].items()]
        for kind, extra, group, requirements in lists:
            for raw, target in requirements:
                if target == name or target not in self.dirs:
                    continue
                source = self._source_of(target, folder, own)
                if source == "external":
                    continue
                marker, extras = self._parse(raw, folder, kind, extra, group)
                edges.append(
                    Edge(
                        to=target,
                        kind=kind,
                        requirement=raw,
                        extra=extra,
                        group=group,
                        marker=marker,
                        extras=extras,
                        source=source,
                    )
                )
        return edges

    def _source_of(
        self, target: str, folder: str, own: dict[str, list[dict[str, Any]]]
    ) -> str | None:
        """Where the uv source naming ``target`` is declared (``member`` or ``root``), None
        when none names it (still an internal edge), ``external`` when a source points
        elsewhere (git, URL, index, or a path that is not the member's folder)."""
        if target in own:
            entries, base, where = own[target], folder, "member"
        elif target in self.root_sources:
            entries, base, where = self.root_sources[target], ".", "root"
        else:
            return None
        for entry in entries:
            if entry.get("workspace") is True:
                return where
            path = entry.get("path")
            if isinstance(path, str) and self._same_folder(base, path, self.dirs[target]):
                return where
        return "external"

    def _same_folder(self, base: str, path: str, folder: str) -> bool:
        """Whether ``path`` (relative to ``base``) is ``folder``: on disk through symlinks, in
        a commit's tree by name."""
        if self.tree is not None:
            return posixpath.normpath(posixpath.join(base, path)) == folder
        self.followed_paths = True
        return os.path.realpath(self.root / base / path) == os.path.realpath(self.root / folder)

    def _parse(
        self, raw: str, folder: str, kind: str, extra: str | None, group: str | None
    ) -> Requirement:
        """Marker and extras of an internal requirement, parsed with ``packaging`` (a bare
        name, the usual spelling inside a workspace, has neither and needs no parse)."""
        if _BARE_NAME.fullmatch(raw):
            return None, ()
        cached = self.snapshot.requirement(raw)
        if cached is not None:
            return cached
        from packaging.requirements import InvalidRequirement
        from packaging.requirements import Requirement as Parsed

        try:
            parsed = Parsed(raw)
        except InvalidRequirement as exc:
            path = "pyproject.toml" if folder == "." else f"{folder}/pyproject.toml"
            if self.tree is not None:
                text = self.tree.read([path])[path].decode("utf-8")
                path = self.tree.label(path)
            else:
                text = (self.root / path).read_text(encoding="utf-8")
            where = {"optional": f"optional-dependencies.{extra}", "group": f"group {group}"}
            reason = str(exc).splitlines()[0]
            raise WorkspaceError(
                f"{path}:{_toml.line_of(text, raw)}: "
                f"invalid requirement {raw!r} in {where.get(kind, 'dependencies')}: {reason}"
            ) from None
        result: Requirement = (
            str(parsed.marker) if parsed.marker is not None else None,
            tuple(sorted(parsed.extras)),
        )
        self.snapshot.remember(raw, result)
        return result
