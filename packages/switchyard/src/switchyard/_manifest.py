"""The manifest: every action's metadata frozen into JSON at build time, and its freshness check.

A registry built from a manifest does no metadata scan. Freshness is checked against a record of
the installed distributions' metadata folders (name and mtime) on ``sys.path``: one ``listdir``
per path entry and one ``stat`` per distribution. Only distributions that changed since the
manifest was written get their ``entry_points.txt`` read, and no plugin is ever imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._errors import ManifestError, StaleManifestError, SwitchyardError
from ._registry import (
    ACTIONS_GROUP,
    HOOKS_GROUP,
    ActionInfo,
    HookEntry,
    Registry,
    split_dist_dir,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FORMAT", "environment_record", "read_manifest", "stale_reason", "write_manifest"]

FORMAT: Final = 1
_GROUPS: Final = (ACTIONS_GROUP, HOOKS_GROUP)


def _metadata_dirs() -> dict[str, str]:
    """Every ``*.dist-info`` / ``*.egg-info`` folder name on sys.path -> its path (first wins)."""
    found: dict[str, str] = {}
    for entry in sys.path:
        folder = entry or "."
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name not in found and name.endswith((".dist-info", ".egg-info")):
                found[name] = os.path.join(folder, name)
    return found


def _stamp(path: str) -> int:
    """A cheap change marker: the newest mtime of the folder and its entry_points.txt."""
    try:
        folder = os.stat(path).st_mtime_ns
    except OSError:
        return -1
    try:
        return max(folder, os.stat(os.path.join(path, "entry_points.txt")).st_mtime_ns)
    except OSError:
        return folder


def _switchyard_sections(path: str) -> dict[str, list[str]]:
    """The ``switchyard.*`` sections of a distribution's entry_points.txt, as sorted lines."""
    try:
        with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return {}
    if "[switchyard." not in text:
        return {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            current = sections.setdefault(group, []) if group in _GROUPS else None
        elif current is not None:
            name, _, value = line.partition("=")
            current.append(f"{name.strip()}={value.strip()}")
    return {group: sorted(lines) for group, lines in sections.items() if lines}


def _digest(value: object) -> str:
    import hashlib
    import json

    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def environment_record() -> dict[str, Any]:
    """What a manifest records about the installed distributions, and its fingerprint."""
    dists: dict[str, int] = {}
    plugins: dict[str, dict[str, Any]] = {}
    for dirname, path in _metadata_dirs().items():
        dists[dirname] = _stamp(path)
        sections = _switchyard_sections(path)
        if sections:
            name, version = split_dist_dir(dirname) or (dirname, None)
            plugins[dirname] = {"name": name, "version": version, "sha256": _digest(sections)}
    fingerprint = _digest(sorted((p["name"], p["version"], p["sha256"]) for p in plugins.values()))
    return {"fingerprint": fingerprint[:32], "dists": dists, "plugins": plugins}


def stale_reason(environment: Mapping[str, Any]) -> str | None:
    """Why the installed entry points differ from ``environment`` (None when they do not)."""
    stored: Mapping[str, int] = environment["dists"]
    plugins: Mapping[str, Mapping[str, Any]] = environment["plugins"]
    current = _metadata_dirs()
    changed = [name for name, path in current.items() if stored.get(name) != _stamp(path)]
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
        sections = _switchyard_sections(current[dirname])
        name, version = split_dist_dir(dirname) or (dirname, None)
        if dirname in plugins:
            if _digest(sections) != plugins[dirname]["sha256"]:
                reasons.append(f"the switchyard entry points of {name} {version} changed")
        elif sections:
            reasons.append(f"new distribution {name} provides {', '.join(sorted(sections))}")
    return "; ".join(reasons) or None


def write_manifest(path: str | Path, registry: Registry | None = None) -> Path:
    """Resolve every action of ``registry`` (default: a fresh entry-point scan) and write JSON.

    Raises the problem of the first action that does not resolve (wrapped in ManifestError),
    so a manifest never records a broken plugin.
    """
    import json

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
    document = {
        "format": FORMAT,
        "fingerprint": environment["fingerprint"],
        "actions": actions,
        "hooks": [
            {"name": h.name, "target": h.target, "distribution": h.distribution}
            for h in reg.hook_entries()
        ],
        "environment": {"dists": environment["dists"], "plugins": environment["plugins"]},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target


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
    import json

    where = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        problem = error.strerror or str(error)
        raise ManifestError(
            where, f"cannot read it ({problem}); write one with `switchyard manifest write {where}`"
        ) from None
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise ManifestError(where, f"not valid JSON: {error}") from None
    try:
        if not isinstance(document, dict):
            raise ValueError("the top level must be a JSON object")
        if document.get("format") != FORMAT:
            raise ValueError(
                f"unsupported format {document.get('format')!r} (this switchyard reads {FORMAT})"
            )
        infos = []
        for index, item in enumerate(_require(document, "actions", list, "")):
            at = f"actions[{index}]: "
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
