"""Reading installed distributions' metadata folders directly, cheaply.

``importlib.metadata`` costs tens of milliseconds to import (email, zipfile, csv, pathlib...) and
builds objects for every distribution; startup is a measured target here, so the registry and
the manifest's freshness check read the ``*.dist-info`` / ``*.egg-info`` folders on ``sys.path``
themselves: one ``listdir`` per path entry, one small read (or ``stat``) per distribution.
Distributions are identified as importlib.metadata does: by normalized name, first on
``sys.path`` wins. (Distributions only a custom meta-path finder can see, such as zipped eggs,
are not found.)
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

__all__ = [
    "Dist",
    "installed",
    "metadata_dirs",
    "normalize_dist_name",
    "read_entry_points",
    "split_dist_dir",
    "stamp",
]

_SUFFIXES = (".dist-info", ".egg-info")


def normalize_dist_name(name: str) -> str:
    """PEP 503 normalization (``Acme_Auth`` -> ``acme-auth``), without a regex (hot path)."""
    normalized = name.lower().replace("_", "-").replace(".", "-")
    while "--" in normalized:
        normalized = normalized.replace("--", "-")
    return normalized


def split_dist_dir(dirname: str) -> tuple[str, str | None] | None:
    """``acme_auth-0.1.0.dist-info`` -> ("acme-auth", "0.1.0"); None if not a metadata dir."""
    for suffix in _SUFFIXES:
        if dirname.endswith(suffix):
            name, sep, version = dirname[: -len(suffix)].partition("-")
            if not sep:
                return normalize_dist_name(name), None
            if suffix == ".egg-info":
                version = version.split("-py", 1)[0]  # name-1.0-py3.11.egg-info
            return normalize_dist_name(name), version or None
    return None


def metadata_dirs() -> dict[str, str]:
    """Every metadata folder name on sys.path -> its path (the first of a name wins)."""
    found: dict[str, str] = {}
    for entry in sys.path:
        folder = entry or "."
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name not in found and name.endswith(_SUFFIXES):
                found[name] = os.path.join(folder, name)
    return found


class Dist(NamedTuple):
    """An installed distribution: normalized name, version, metadata folder name and path."""

    name: str
    version: str | None
    dirname: str
    path: str


def installed() -> list[Dist]:
    """Installed distributions, one per normalized name (the first on sys.path), in path order."""
    seen: set[str] = set()
    dists: list[Dist] = []
    for dirname, path in metadata_dirs().items():
        parsed = split_dist_dir(dirname)
        if parsed is None or parsed[0] in seen:
            continue
        seen.add(parsed[0])
        dists.append(Dist(parsed[0], parsed[1], dirname, path))
    return dists


def read_version(path: str) -> str | None:
    """The Version header of a metadata folder (for folders whose name lacks it)."""
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(path, filename), encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("Version:"):
                        return line.partition(":")[2].strip() or None
                    if not line.strip():
                        break
        except (OSError, UnicodeDecodeError):
            continue
    return None


def _read_bytes(path: str) -> bytes:
    """A small file's content (b"" if missing); os.open/os.read: no file objects (hot path)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        chunks = [os.read(fd, 16384)]
        while len(chunks[-1]) == 16384:
            chunks.append(os.read(fd, 16384))
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def read_entry_points(path: str, prefix: str = "switchyard.") -> dict[str, list[tuple[str, str]]]:
    """The entry points of groups starting with ``prefix`` in a metadata folder, in file order.

    Returns {group: [(name, value), ...]}; ``value`` is ``module`` or ``module:attr`` with any
    ``[extras]`` removed.
    """
    raw = _read_bytes(os.path.join(path, "entry_points.txt"))
    if b"[" + prefix.encode() not in raw:
        return {}
    text = raw.decode("utf-8", errors="replace")
    groups: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for text_line in text.splitlines():
        line = text_line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            current = groups.setdefault(group, []) if group.startswith(prefix) else None
        elif current is not None:
            name, sep, value = line.partition("=")
            if sep:
                current.append((name.strip(), value.split("[", 1)[0].strip()))
    return {group: entries for group, entries in groups.items() if entries}


def stamp(path: str, *, entry_points: bool = False) -> int:
    """A cheap change marker: the mtime of the folder (or of its entry_points.txt)."""
    try:
        target = os.path.join(path, "entry_points.txt") if entry_points else path
        return os.stat(target).st_mtime_ns
    except OSError:
        return -1
