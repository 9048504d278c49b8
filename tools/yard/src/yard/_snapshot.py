"""A cache of what yard read from pyproject files, keyed by their content.

Reading a thousand pyproject files with tomllib costs far more than yard's own work, so yard
keeps each file's record (see ``_pyproject``) and each parsed requirement in one marshal file
per workspace under the user's cache folder. Records are pure functions of the file's bytes:
an edited file simply misses and is read again, and no stale answer is possible. Set
``YARD_NO_CACHE=1`` to read everything afresh, ``YARD_CACHE_DIR`` to move the folder.
"""

from __future__ import annotations

import marshal
import os
import zlib
from pathlib import Path
from typing import Any

from . import _pyproject

_FORMAT = 3
Requirement = tuple[str | None, tuple[str, ...]]
"""The parts of a requirement yard keeps: its marker (as text) and its extras."""


def cache_dir() -> Path:
    """Where yard keeps its caches: ``$YARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/yard``, else
    ``~/.cache/yard``."""
    explicit = os.environ.get("YARD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "yard" if xdg else Path.home() / ".cache" / "yard"


class Snapshot:
    """The records of one workspace's pyproject files, loaded from and saved to the cache."""

    __slots__ = ("_dirty", "_path", "_records", "_requirements", "_used", "_used_requirements")

    def __init__(self, root: Path) -> None:
        self._records: dict[int, _pyproject.Record] = {}
        self._requirements: dict[str, Requirement] = {}
        self._used: dict[int, _pyproject.Record] = {}
        self._used_requirements: dict[str, Requirement] = {}
        self._dirty = False
        self._path: Path | None = None
        if os.environ.get("YARD_NO_CACHE"):
            return
        key = zlib.crc32(str(root).encode()) & 0xFFFFFFFF
        self._path = cache_dir() / f"workspace-{key:08x}.marshal"
        try:
            data = marshal.loads(self._path.read_bytes())
            if isinstance(data, tuple) and len(data) == 3 and data[0] == _FORMAT:
                self._records, self._requirements = data[1], data[2]
        except (OSError, EOFError, ValueError, TypeError):
            pass

    def record(self, content: bytes, where: str) -> _pyproject.Record:
        """The record of a pyproject with these bytes, read afresh only when not cached."""
        key = _key(content)
        stored = self._records.get(key)
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
        self._used[key] = stored
        return found

    def requirement(self, raw: str) -> Requirement | None:
        """A cached parsed requirement, or None when it must be parsed."""
        found = self._requirements.get(raw)
        if found is not None:
            self._used_requirements[raw] = found
        return found

    def remember(self, raw: str, parsed: Requirement) -> None:
        """Keep a freshly parsed requirement."""
        self._used_requirements[raw] = parsed
        self._dirty = True

    def save(self) -> None:
        """Write what this run used back to the cache (atomically), if anything was new."""
        if self._path is None:
            return
        unchanged = len(self._used) == len(self._records) and len(self._used_requirements) == len(
            self._requirements
        )
        if not self._dirty and unchanged:
            return
        data: Any = (_FORMAT, self._used, self._used_requirements)
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(marshal.dumps(data))
            os.replace(tmp, self._path)
        except OSError:  # a read-only or full cache folder only costs speed
            pass


def _key(content: bytes) -> int:
    """A content key: length, CRC-32 and Adler-32 together (no hashlib import at start-up)."""
    return (len(content) << 64) | (zlib.crc32(content) << 32) | zlib.adler32(content)
