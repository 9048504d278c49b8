"""A cache of what yard read from pyproject files, keyed by their content.

Reading a thousand pyproject files with tomllib costs far more than yard's own work, so yard
keeps, in one marshal file per workspace under the user's cache folder:

- each file's record (see ``_pyproject``) and each parsed requirement, by content;
- the root pyproject's record, apart, since every run needs it first;
- each member pyproject's stat (times, size, inode) with its content key, so that a warm
  run need not read a file that has not been touched since;
- the last workspace yard built from those records (members, edges, settings), under the
  content keys of every file it came from;
- the last few workspaces built from git commits (``--head``, the merge base), under the id of
  the commit's tree, which never changes.

Everything is a pure function of file contents: an edited file has another key and misses, so
no stale answer is possible (any write changes a file's ctime, which no tool can set back). A
warm run stats the files, parses none of them and builds no edges; the per-file records are
unpacked only when something missed. A fresh checkout (new stats, same contents) reads the
files once and finds their records by content. Set
``YARD_NO_CACHE=1`` to read everything afresh, ``YARD_CACHE_DIR`` to move the folder.
"""

from __future__ import annotations

import marshal
import os
import time
import zlib
from pathlib import Path
from typing import Any

from . import _pyproject

_FORMAT = 8
_TREES_KEPT = 4
"""How many workspaces built from git trees (the merge base, a --head) the cache keeps."""
_SETTLED_NS = 2_000_000_000
"""A file's stat is trusted for its content key only when its last change is older than this
(two writes within one timestamp tick must not look alike; git's "racily clean" rule)."""
Requirement = tuple[str | None, tuple[str, ...]]
"""The parts of a requirement yard keeps: its marker (as text) and its extras."""
Stat = tuple[int, int, int, int, int]
"""A file's modification and change times (ns), size and inode, and its content key."""
Signature = tuple[int, tuple[str, ...], tuple[int, ...]]
"""What a workspace was built from: the root pyproject's key, the member folders and their
pyprojects' keys."""


def cache_dir() -> Path:
    """Where yard keeps its caches: ``$YARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/yard``, else
    ``~/.cache/yard``."""
    explicit = os.environ.get("YARD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "yard" if xdg else Path.home() / ".cache" / "yard"


def key(content: bytes) -> int:
    """A content key: length, CRC-32 and Adler-32 together (no hashlib import at start-up)."""
    return (len(content) << 64) | (zlib.crc32(content) << 32) | zlib.adler32(content)


class Snapshot:
    """The records of one workspace's pyproject files, loaded from and saved to the cache."""

    __slots__ = (
        "_adding",
        "_blob",
        "_dirty",
        "_path",
        "_records",
        "_requirements",
        "_stats",
        "_stats_used",
        "_top",
        "_trees",
        "_trees_blob",
        "_used",
        "_used_requirements",
        "_workspace",
    )

    def __init__(self, root: Path, *, adding: bool = False) -> None:
        """The cache of the workspace at ``root``. ``adding``: a save adds the records this
        run read to those kept and changes nothing else (a commit's files, read beside the
        working tree's, must not drop the working tree's records)."""
        self._adding = adding
        self._blob: bytes | None = None
        self._records: dict[int, _pyproject.Record] | None = {}
        self._requirements: dict[str, Requirement] = {}
        self._top: tuple[int, _pyproject.Record] | None = None
        self._workspace: tuple[Signature, Any] | None = None
        self._trees_blob: bytes | None = None
        self._trees: dict[str, Any] | None = None
        self._stats: dict[str, Stat] = {}
        self._stats_used: dict[str, Stat] = {}
        self._used: dict[int, _pyproject.Record] = {}
        self._used_requirements: dict[str, Requirement] = {}
        self._dirty = False
        self._path: Path | None = None
        if os.environ.get("YARD_NO_CACHE"):
            return
        crc = zlib.crc32(str(root).encode()) & 0xFFFFFFFF
        self._path = cache_dir() / f"workspace-{crc:08x}.marshal"
        try:
            data = marshal.loads(self._path.read_bytes())
            if isinstance(data, tuple) and len(data) == 6 and data[0] == _FORMAT:
                _, self._top, self._workspace, self._stats, self._blob, self._trees_blob = data
                self._records = None  # unpacked from the blob when first needed
        except (OSError, EOFError, ValueError, TypeError):
            pass

    def _all_records(self) -> dict[int, _pyproject.Record]:
        records = self._records
        if records is None:
            try:
                records, requirements = marshal.loads(self._blob or b"")
            except (EOFError, ValueError, TypeError):  # a damaged cache only costs speed
                records, requirements = {}, {}
            self._records, self._requirements = records, requirements
        return records

    def record(
        self, content: bytes, where: str, *, content_key: int | None = None
    ) -> _pyproject.Record:
        """The record of a pyproject with these bytes (whose key may be given), read afresh
        only when not cached."""
        k = key(content) if content_key is None else content_key
        stored: _pyproject.Record | None
        if self._top is not None and self._top[0] == k:
            stored = self._top[1]
        else:
            stored = self._all_records().get(k)
        if stored is not None:
            found = _pyproject.expand(stored)
        else:
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError as exc:
                from ._errors import WorkspaceError

                raise WorkspaceError(f"{where}: not UTF-8 text: {exc}") from None
            found = _pyproject.read(text, where)
            stored = _pyproject.compact(found)
            self._dirty = True
        self._used[k] = stored
        return found

    def known(self, path: str, stat: os.stat_result) -> int | None:
        """The content key of the file at ``path`` if its stat is the one seen last time."""
        seen = self._stats.get(path)
        if (
            seen is None
            or seen[0] != stat.st_mtime_ns
            or seen[1] != stat.st_ctime_ns
            or seen[2] != stat.st_size
            or seen[3] != stat.st_ino
        ):
            return None
        self._stats_used[path] = seen
        return seen[4]

    def learn(self, path: str, stat: os.stat_result, content_key: int) -> None:
        """Remember the content key of a file with this stat, once the file has settled."""
        if max(stat.st_mtime_ns, stat.st_ctime_ns) < time.time_ns() - _SETTLED_NS:
            self._stats_used[path] = (
                stat.st_mtime_ns,
                stat.st_ctime_ns,
                stat.st_size,
                stat.st_ino,
                content_key,
            )
            self._dirty = True

    def has(self, content_key: int) -> bool:
        """Whether the record of a file with this key is cached."""
        return content_key in self._all_records()

    def remember_top(self, content_key: int) -> None:
        """Keep the record of this key (the root pyproject's) apart, for the next run."""
        top = (content_key, self._used[content_key])
        if top != self._top:
            self._top = top
            self._dirty = True

    def workspace(self, signature: Signature) -> Any:
        """The workspace built from exactly these files last time, or None."""
        if self._workspace is not None and self._workspace[0] == signature:
            return self._workspace[1]
        return None

    def remember_workspace(self, signature: Signature, built: Any) -> None:
        """Keep what was built from these files (marshal-able builtins only)."""
        self._workspace = (signature, built)
        self._dirty = True

    def _all_trees(self) -> dict[str, Any]:
        trees = self._trees
        if trees is None:
            try:
                trees = marshal.loads(self._trees_blob) if self._trees_blob else {}
            except (EOFError, ValueError, TypeError):
                trees = {}
            trees = trees if isinstance(trees, dict) else {}
            self._trees = trees
        return trees

    def tree(self, oid: str) -> Any:
        """The workspace built from the git tree ``oid`` (a commit's root folder), or None.

        A tree never changes, so what was built from it holds for ever (until evicted)."""
        return self._all_trees().get(oid)

    def remember_tree(self, oid: str, built: Any) -> None:
        """Keep what was built from the git tree ``oid``, with the last few others."""
        trees = self._all_trees()
        trees.pop(oid, None)
        trees[oid] = built
        while len(trees) > _TREES_KEPT:
            del trees[next(iter(trees))]
        self._dirty = True

    def requirement(self, raw: str) -> Requirement | None:
        """A cached parsed requirement, or None when it must be parsed."""
        self._all_records()
        found = self._requirements.get(raw)
        if found is not None:
            self._used_requirements[raw] = found
        return found

    def remember(self, raw: str, parsed: Requirement) -> None:
        """Keep a freshly parsed requirement."""
        self._used_requirements[raw] = parsed
        self._dirty = True

    def save(self) -> None:
        """Write the cache back (atomically) when this run added to it.

        The records kept are the ones this run used: files that changed or left the workspace
        drop out, so the cache does not grow without end (a snapshot that is ``adding`` keeps
        the others too; the next ordinary save drops what no run uses any more).
        """
        if self._path is None or not self._dirty:
            return
        stats = self._stats if self._adding else self._stats_used
        if self._records is None:  # nothing missed: the records stay as they were
            blob = self._blob
        elif self._adding:
            records = {**self._records, **self._used}
            blob = marshal.dumps((records, {**self._requirements, **self._used_requirements}))
        else:
            blob = marshal.dumps((self._used, self._used_requirements))
        trees = self._trees_blob if self._trees is None else marshal.dumps(self._trees)
        data: Any = (_FORMAT, self._top, self._workspace, stats, blob, trees)
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(marshal.dumps(data))
            os.replace(tmp, self._path)
        except (OSError, ValueError):  # a read-only or full cache folder only costs speed
            pass
