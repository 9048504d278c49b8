"""The content-addressed cache of builds and test results: one folder per key, safe to share
between processes.

Layout: ``<cache>/entries/<key[:2]>/<key>/`` holds the artifacts made for that key (a wheel,
maybe an sdist or a manifest; a test run's output) and ``entry.json`` describing them. Every
file appears by ``os.replace`` of a finished temporary file in the same folder, and
``entry.json`` is written last, so a reader sees a complete entry or none. Two builds of the
same key at once both write identical content; the last rename wins. Pruning first renames an
entry into ``trash/``, so a reader never sees half an entry. The mtime of ``entry.json``
records the last use.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

from ._errors import YardError
from ._snapshot import cache_dir

ENTRY: Final = "entry.json"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS: Final = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def default_cache_dir() -> Path:
    """``build/`` in yard's cache folder (``$YARD_CACHE_DIR``, ``$XDG_CACHE_HOME/yard`` or
    ``~/.cache/yard``)."""
    return cache_dir() / "build"


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5GiB``, ``100k`` or plain bytes; one clear error otherwise."""
    match = _SIZE.match(text)
    if match is None:
        raise YardError(f"--max-size {text!r}: expected a size such as 500M, 2G or 1048576")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError  # pragma: no cover


class Entry(NamedTuple):
    """A complete cache entry: its folder, its artifacts (file names) and description."""

    key: str
    folder: Path
    artifacts: tuple[str, ...]
    meta: dict[str, Any]

    def path(self, suffix: str) -> Path | None:
        """The artifact whose name ends with ``suffix`` (``.whl``, ``.tar.gz``), if any."""
        for name in self.artifacts:
            if name.endswith(suffix):
                return self.folder / name
        return None


class BuildCache:
    """A build cache folder; created on first write."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = root

    def check_writable(self) -> None:
        """Create the folder, or fail with one line saying why."""
        try:
            (self.root / "entries").mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe.{os.getpid()}.{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise YardError(
                f"cache folder {self.root} is not writable ({exc.strerror}); "
                "pass --cache-dir DIR or set YARD_CACHE_DIR"
            ) from None

    def _folder(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / key

    def lookup(
        self, key: str, suffixes: Sequence[str] = (".whl",), *, touch: bool = True
    ) -> Entry | None:
        """The entry of ``key`` if it holds an artifact for every suffix; marks it used (unless
        ``touch`` is False: only looking)."""
        folder = self._folder(key)
        try:
            meta = json.loads((folder / ENTRY).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or not isinstance(meta.get("artifacts"), list):
            return None
        artifacts = tuple(str(a) for a in meta["artifacts"])
        entry = Entry(key, folder, artifacts, meta)
        for suffix in suffixes:
            found = entry.path(suffix)
            if found is None or not found.is_file():
                return None
        if touch:
            with contextlib.suppress(OSError):
                os.utime(folder / ENTRY)
        return entry

    def store(self, key: str, files: Iterable[Path], meta: dict[str, Any]) -> Entry:
        """Copy ``files`` into the entry of ``key`` (atomically each) and describe them."""
        folder = self._folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        names: list[str] = []
        for source in files:
            copy_atomic(source, folder / source.name)
            names.append(source.name)
        try:
            old = json.loads((folder / ENTRY).read_text(encoding="utf-8"))
            kept = [a for a in old.get("artifacts", []) if (folder / a).is_file()]
        except (OSError, ValueError, AttributeError):
            kept = []
        artifacts = sorted(set(kept) | set(names))
        data = {**meta, "key": key, "artifacts": artifacts, "stored": time.time()}
        write_atomic(folder / ENTRY, json.dumps(data, indent=1, sort_keys=True).encode())
        return Entry(key, folder, tuple(artifacts), data)

    def entries(self) -> list[tuple[Path, float, int, dict[str, Any]]]:
        """Every entry folder with its last use, size in bytes and description."""
        out: list[tuple[Path, float, int, dict[str, Any]]] = []
        base = self.root / "entries"
        try:
            shards = sorted(base.iterdir())
        except OSError:
            return out
        for shard in shards:
            try:
                folders = sorted(shard.iterdir())
            except OSError:
                continue
            for folder in folders:
                try:
                    used = (folder / ENTRY).stat().st_mtime
                    meta = json.loads((folder / ENTRY).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    used, meta = 0.0, {}
                size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
                out.append((folder, used, size, meta if isinstance(meta, dict) else {}))
        return out

    def info(self) -> dict[str, Any]:
        """The folder, the number of entries, their total size and the members they hold."""
        entries = self.entries()
        members: dict[str, int] = {}
        kinds = {"build": 0, "test": 0}
        for _, _, _, meta in entries:
            name = str(meta.get("member", "?"))
            members[name] = members.get(name, 0) + 1
            kind = "test" if meta.get("kind") == "test" else "build"
            kinds[kind] += 1
        used = [u for _, u, _, _ in entries if u]
        return {
            "path": str(self.root),
            "entries": len(entries),
            "kinds": kinds,
            "size": sum(s for _, _, s, _ in entries),
            "oldest_use": min(used) if used else None,
            "newest_use": max(used) if used else None,
            "members": dict(sorted(members.items())),
        }

    def prune(self, max_size: int) -> tuple[int, int]:
        """Remove the least recently used entries until the rest fit in ``max_size`` bytes.

        Returns (entries removed, bytes freed). An entry is renamed into ``trash/`` first so
        that a build reading it at the same moment sees it whole or not at all.
        """
        entries = sorted(self.entries(), key=lambda e: e[1])
        total = sum(size for _, _, size, _ in entries)
        removed = freed = 0
        trash = self.root / "trash"
        for folder, _, size, _ in entries:
            if total <= max_size:
                break
            trash.mkdir(parents=True, exist_ok=True)
            target = trash / f"{folder.name}.{uuid.uuid4().hex}"
            try:
                folder.rename(target)
            except OSError:
                continue
            shutil.rmtree(target, ignore_errors=True)
            total -= size
            removed += 1
            freed += size
        for shard in (self.root / "entries").glob("*"):
            with contextlib.suppress(OSError):
                shard.rmdir()  # only when empty
        return removed, freed


def write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` so that ``target`` is never seen half-written."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
