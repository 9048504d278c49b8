"""The manifest: every action's metadata frozen into JSON at build time, and its freshness check.

A registry built from a manifest does no metadata scan. Freshness is checked against a record of
the installed distributions' metadata folders (name and mtime) on ``sys.path``: one ``listdir``
per path entry and one ``stat`` per distribution. Only distributions that changed since the
manifest was written get their ``entry_points.txt`` read, and no plugin is ever imported.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Final

from ._errors import ManifestError, StaleManifestError, SwitchyardError
from ._metadata import metadata_dirs, read_entry_points, split_dist_dir, stamp
from ._registry import ActionInfo, HookEntry, Registry

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["FORMAT", "environment_record", "read_manifest", "stale_reason", "write_manifest"]

FORMAT: Final = 1
_INFO_KEYS: Final = ("name", "target", "distribution", "dist_version", "queue", "description")


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
    return hashlib.sha256(text.encode()).hexdigest()


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
    """What a manifest records about the installed distributions, and its fingerprint.

    ``paths``: each sys.path folder's mtime and number of metadata folders (installing or
    removing a distribution changes its folder's mtime); ``dists``: each metadata folder's
    stamp; ``plugins``: the distributions with switchyard entry points, with a digest of them.
    """
    paths: dict[str, list[int]] = {}
    for folder in _path_folders():
        try:
            paths[folder] = [os.stat(folder).st_mtime_ns, _metadata_count(folder)]
        except OSError:
            continue
    dists: dict[str, int] = {}
    plugins: dict[str, dict[str, Any]] = {}
    for dirname, path in metadata_dirs().items():
        sections = _sections(path)
        dists[dirname] = stamp(path, entry_points=bool(sections))
        if sections:
            name, version = split_dist_dir(dirname) or (dirname, None)
            plugins[dirname] = {
                "name": name,
                "version": version,
                "sha256": _digest(sections),
                "folder": os.path.abspath(path),
            }
    fingerprint = _digest(sorted((p["name"], p["version"], p["sha256"]) for p in plugins.values()))
    return {"fingerprint": fingerprint[:32], "paths": paths, "dists": dists, "plugins": plugins}


def _unchanged(environment: Mapping[str, Any]) -> bool:
    """The fast check: no sys.path folder and no plugin's entry_points.txt changed.

    One stat per sys.path entry and per plugin; no listdir unless a folder that held no
    distributions changed (a manifest written into the current folder changes its mtime).
    """
    paths = environment.get("paths")
    if not isinstance(paths, dict):
        return False
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
    missing = set(paths) - set(current)
    if any(paths[folder][1] for folder in missing):
        return False
    dists = environment["dists"]
    return all(
        stamp(plugin["folder"], entry_points=True) == dists[dirname]
        for dirname, plugin in environment["plugins"].items()
    )


def stale_reason(environment: Mapping[str, Any]) -> str | None:
    """Why the installed entry points differ from ``environment`` (None when they do not)."""
    if _unchanged(environment):
        return None
    stored: Mapping[str, int] = environment["dists"]
    plugins: Mapping[str, Mapping[str, Any]] = environment["plugins"]
    current = metadata_dirs()
    changed = [
        name
        for name, path in current.items()
        if stored.get(name) != stamp(path, entry_points=name in plugins)
    ]
    if not changed and len(current) == len(stored):
        return None
    reasons: list[str] = []
    replaced: set[str] = set()
    for dirname, plugin in plugins.items():
        if dirname in current:
            continue
        successor = next(
            (c for c in changed if (split_dist_dir(c) or ("",))[0] == plugin["name"]), None
        )
        if successor is None:
            reasons.append(f"{plugin['name']} {plugin['version']} is no longer installed")
        else:
            replaced.add(successor)
            new_version = (split_dist_dir(successor) or ("", None))[1]
            reasons.append(f"{plugin['name']} {plugin['version']} -> {new_version}")
    for dirname in changed:
        if dirname in replaced:
            continue
        sections = _sections(current[dirname])
        name, version = split_dist_dir(dirname) or (dirname, None)
        if dirname in plugins:
            if _digest(sections) != plugins[dirname]["sha256"]:
                reasons.append(f"the switchyard entry points of {name} {version} changed")
        elif sections:
            reasons.append(f"new distribution {name} provides {', '.join(sorted(sections))}")
    return "; ".join(reasons) or None


def write_manifest(path: str | Path, registry: Registry | None = None) -> Path:
    """Resolve every action of ``registry`` (default: a fresh entry-point scan) and write JSON.

    Raises ManifestError (the cause chained) rather than record a broken or conflicting action.
    The first line of the file holds everything a registry needs (an ``index`` of the actions,
    the hooks, the environment record), so that reading it skips the schemas; the whole file is
    one JSON document all the same.
    """
    import json
    from pathlib import Path

    target = Path(path)
    reg = Registry.from_entry_points() if registry is None else registry
    problems = reg.problems()
    if problems:
        raise ManifestError(str(target), f"cannot write it: {problems[0]}") from problems[0]
    environment = environment_record()
    actions = []
    for name in reg.names():
        info = reg.info(name)
        try:
            item = reg.resolve(name)
        except SwitchyardError as error:
            raise ManifestError(
                str(target), f"cannot write it: {error}; run `switchyard doctor`"
            ) from error
        actions.append(
            {
                "name": name,
                "target": info.target,
                "distribution": info.distribution,
                "dist_version": info.dist_version,
                "version": item.version,
                "queue": item.queue,
                "description": item.description,
                "retries": item.retries,
                "backoff": item.backoff,
                "timeout": item.timeout,
                "idempotent": item.idempotent,
                "input_schema": item.input_schema(),
                "output_schema": item.output_schema(),
            }
        )
    head = {
        "format": FORMAT,
        "fingerprint": environment["fingerprint"],
        "index": [{key: action[key] for key in _INFO_KEYS} for action in actions],
        "hooks": [
            {"name": h.name, "target": h.target, "distribution": h.distribution}
            for h in reg.hook_entries()
        ],
        "environment": {k: environment[k] for k in ("paths", "dists", "plugins")},
    }
    compact = (",", ":")
    lines = [json.dumps(head, separators=compact)[:-1] + ",", '"actions":[']
    lines += [json.dumps(action, separators=compact) + "," for action in actions]
    if actions:
        lines[-1] = lines[-1][:-1]
    lines.append("]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target


def _load(path: str) -> tuple[dict[str, Any], str]:
    """The manifest's head (first line) when it has one, else the whole document."""
    import json

    with open(path, "rb") as handle:
        first = handle.readline()
        if first.startswith(b"{") and first.endswith(b",\n"):
            try:
                head = json.loads(first[:-2] + b"}")
            except ValueError:
                head = None
            if isinstance(head, dict) and isinstance(head.get("index"), list):
                return head, "index"
        document = json.loads(first + handle.read())
    if not isinstance(document, dict):
        raise ManifestError(path, "malformed: the top level must be a JSON object")
    return document, "actions"


def _require(
    document: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str
) -> Any:
    value = document.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"{where}{key!r} is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _optional(document: Mapping[str, Any], key: str, where: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}{key!r} must be a string or null")
    return value


def read_manifest(path: str | Path, *, check_fresh: bool = True) -> Registry:
    """A Registry from the manifest at ``path`` (see Registry.from_manifest)."""
    where = os.fspath(path)
    try:
        document, key = _load(where)
    except OSError as error:
        problem = error.strerror or str(error)
        raise ManifestError(
            where, f"cannot read it ({problem}); write one with `switchyard manifest write {where}`"
        ) from None
    except ValueError as error:
        raise ManifestError(where, f"not valid JSON: {error}") from None
    try:
        if document.get("format") != FORMAT:
            raise ValueError(
                f"unsupported format {document.get('format')!r} (this switchyard reads {FORMAT})"
            )
        infos = []
        for index, item in enumerate(_require(document, key, list, "")):
            at = f"{key}[{index}]: "
            if not isinstance(item, dict):
                raise ValueError(f"{at}must be an object")
            infos.append(
                ActionInfo(
                    _require(item, "name", str, at),
                    _require(item, "target", str, at),
                    _optional(item, "distribution", at),
                    _optional(item, "dist_version", at),
                    _optional(item, "queue", at),
                    _optional(item, "description", at),
                )
            )
        hooks = []
        for index, item in enumerate(_require(document, "hooks", list, "")):
            at = f"hooks[{index}]: "
            if not isinstance(item, dict):
                raise ValueError(f"{at}must be an object")
            hooks.append(
                HookEntry(
                    _require(item, "name", str, at),
                    _require(item, "target", str, at),
                    _optional(item, "distribution", at),
                )
            )
        environment = _require(document, "environment", dict, "")
        _require(environment, "dists", dict, "environment: ")
        _require(environment, "plugins", dict, "environment: ")
    except ValueError as error:
        raise ManifestError(where, f"malformed: {error}") from None
    if check_fresh:
        try:
            reason = stale_reason(environment)
        except (KeyError, TypeError, AttributeError) as error:
            raise ManifestError(where, f"malformed environment record: {error!r}") from None
        if reason is not None:
            raise StaleManifestError(where, reason)
    return Registry(infos, hook_entries=hooks, source=f"manifest {where}")
