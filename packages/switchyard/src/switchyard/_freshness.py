"""Is a manifest still true to the installed plugins? Answered cheaply, without importing any.

The manifest records, when written:

- ``paths``: each sys.path folder's mtime and how many metadata folders it holds (installing,
  upgrading or removing a distribution creates or deletes a folder in it, changing its mtime);
- ``plugins``: each distribution with ``switchyard.*`` entry points: its metadata folder, the
  mtime of its entry_points.txt and a digest of those entry points;
- ``installed``: every metadata folder's stamp (only read when something changed).

When nothing changed, checking costs one ``stat`` per sys.path folder and one per plugin. When
something did, the detailed diff lists the folders, reads only the changed distributions'
entry_points.txt, and says what changed ("acme-auth 0.1.0 -> 0.2.0").
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from ._metadata import metadata_dirs, read_entry_points, split_dist_dir, stamp

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["environment_record", "stale_reason", "unchanged"]


def _sections(path: str) -> dict[str, list[str]]:
    """The switchyard entry points of a metadata folder, as sorted ``name=value`` lines."""
    return {
        group: sorted(f"{name}={value}" for name, value in entries)
        for group, entries in read_entry_points(path).items()
    }


def _digest(value: object) -> str:
    import hashlib
    import json

    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _path_folders() -> list[str]:
    """The absolute sys.path entries, without duplicates, in order."""
    seen: dict[str, None] = {}
    for entry in sys.path:
        seen.setdefault(os.path.abspath(entry or "."), None)
    return list(seen)


def _metadata_count(folder: str) -> int:
    try:
        return sum(name.endswith((".dist-info", ".egg-info")) for name in os.listdir(folder))
    except OSError:
        return 0


def environment_record() -> dict[str, Any]:
    """``fingerprint``, ``paths``, ``plugins`` and ``installed`` (see the module docstring)."""
    paths: dict[str, list[int]] = {}
    for folder in _path_folders():
        try:
            paths[folder] = [os.stat(folder).st_mtime_ns, _metadata_count(folder)]
        except OSError:
            continue
    installed: dict[str, int] = {}
    plugins: dict[str, dict[str, Any]] = {}
    for dirname, path in metadata_dirs().items():
        sections = _sections(path)
        installed[dirname] = stamp(path, entry_points=bool(sections))
        if sections:
            plugins[dirname] = {
                "stamp": installed[dirname],
                "sha256": _digest(sections),
                "folder": os.path.abspath(path),
            }
    fingerprint = _digest(sorted((name, p["sha256"]) for name, p in plugins.items()))
    return {"fingerprint": fingerprint, "paths": paths, "plugins": plugins, "installed": installed}


def unchanged(paths: Mapping[str, Any], plugins: Mapping[str, Any]) -> bool:
    """The fast check: no sys.path folder and no plugin's entry_points.txt changed.

    No listdir unless a folder that held no distributions changed (a manifest written into
    the current folder changes that folder's mtime) or is new on sys.path.
    """
    current = _path_folders()
    for folder in current:
        known = paths.get(folder)
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            if known is not None and known[1]:
                return False
            continue
        if known is None or (known[0] != mtime and not known[1]):
            if _metadata_count(folder):
                return False
        elif known[0] != mtime:
            return False
    if any(paths[folder][1] for folder in set(paths).difference(current)):
        return False
    return all(
        stamp(plugin["folder"], entry_points=True) == plugin["stamp"] for plugin in plugins.values()
    )


def _label(dirname: str) -> tuple[str, str | None]:
    return split_dist_dir(dirname) or (dirname, None)


def stale_reason(
    paths: Mapping[str, Any], plugins: Mapping[str, Any], installed: Mapping[str, int]
) -> str | None:
    """Why the installed switchyard entry points differ from the record (None: they do not)."""
    if unchanged(paths, plugins):
        return None
    current = metadata_dirs()
    changed = [
        dirname
        for dirname, path in current.items()
        if installed.get(dirname) != stamp(path, entry_points=dirname in plugins)
    ]
    reasons: list[str] = []
    replaced: set[str] = set()
    for dirname in plugins:
        if dirname in current:
            continue
        name, version = _label(dirname)
        successor = next((c for c in changed if _label(c)[0] == name), None)
        if successor is None:
            reasons.append(f"{name} {version} is no longer installed")
        else:
            replaced.add(successor)
            reasons.append(f"{name} {version} -> {_label(successor)[1]}")
    for dirname in changed:
        if dirname in replaced:
            continue
        sections = _sections(current[dirname])
        name, version = _label(dirname)
        if dirname in plugins:
            if _digest(sections) != plugins[dirname]["sha256"]:
                reasons.append(f"the switchyard entry points of {name} {version} changed")
        elif sections:
            reasons.append(f"new distribution {name} provides {', '.join(sorted(sections))}")
    return "; ".join(reasons) or None
