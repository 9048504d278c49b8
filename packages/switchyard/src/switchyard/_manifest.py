"""The manifest: every action's metadata frozen into JSON at build time.

One JSON document, laid out so that a registry needs only its first line::

    {"format":1,"fingerprint":"…","index_fields":[…],"index":[[name,target,…],…],
     "hooks":[…],"environment":{"paths":{…},"plugins":{…}},      <- line 1: all a registry needs
    "installed":{…},                        <- line 2: read only when a folder's mtime changed
    "actions":[                                                   <- full entries with schemas
    {…},
    …]}

A registry built from it does no metadata scan and imports nothing; freshness is checked by
``_freshness``. Hand-written manifests (any layout, ``actions`` only) are read in full.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from ._errors import ManifestError, StaleManifestError, SwitchyardError
from ._freshness import environment_record, stale_reason
from ._registry import ActionInfo, HookEntry, Registry

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["FORMAT", "read_manifest", "scheduled_actions", "write_manifest"]

FORMAT: Final = 1
INDEX_FIELDS: Final = ActionInfo._fields


def _describe(reg: Registry, name: str, where: str) -> dict[str, Any]:
    info = reg.info(name)
    try:
        item = reg.resolve(name)
    except SwitchyardError as error:
        raise ManifestError(where, f"cannot write it: {error}; run `switchyard doctor`") from error
    return {
        "name": name,
        "target": info.target,
        "distribution": info.distribution,
        "dist_version": info.dist_version,
        "version": item.version,
        "queue": item.policy.queue,
        "description": item.description,
        "policy": item.policy.to_json(),
        "input_schema": item.input_schema(),
        "output_schema": item.output_schema(),
    }


def write_manifest(path: str | Path, registry: Registry | None = None) -> Path:
    """Resolve every action of ``registry`` (default: a fresh entry-point scan) and write JSON.

    Raises ManifestError (the cause chained) rather than record a broken or conflicting action.
    Written atomically (a temporary file, then a rename).
    """
    import json
    from pathlib import Path

    target = Path(path)
    reg = Registry.from_entry_points() if registry is None else registry
    problems = reg.problems()
    if problems:
        raise ManifestError(str(target), f"cannot write it: {problems[0]}") from problems[0]
    actions = [_describe(reg, name, str(target)) for name in reg.names()]
    environment = environment_record()
    head = {
        "format": FORMAT,
        "fingerprint": environment["fingerprint"],
        "index_fields": list(INDEX_FIELDS),
        "index": [[action[key] for key in INDEX_FIELDS] for action in actions],
        "hooks": [
            {"name": h.name, "target": h.target, "distribution": h.distribution}
            for h in reg.hook_entries()
        ],
        "environment": {"paths": environment["paths"], "plugins": environment["plugins"]},
    }

    def dump(value: object) -> str:
        return json.dumps(value, separators=(",", ":"))

    text = (
        dump(head)[:-1]
        + ',\n"installed":'
        + dump(environment["installed"])
        + ',\n"actions":[\n'
        + ",\n".join(dump(action) for action in actions)
        + "\n]}\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)
    return target


def _read(path: str) -> tuple[dict[str, Any], bool]:
    """The manifest's first line when it holds the index (True), else the whole document."""
    import json

    with open(path, "rb") as handle:
        first = handle.readline()
        if first.startswith(b"{") and first.endswith(b",\n"):
            try:
                head = json.loads(first[:-2] + b"}")
            except ValueError:
                head = None
            if isinstance(head, dict) and "index" in head:
                return head, True
        document = json.loads(first + handle.read())
    if not isinstance(document, dict):
        raise ManifestError(path, "malformed: the top level must be a JSON object")
    return document, False


def _read_installed(path: str) -> object:
    """The ``installed`` record: the second line when laid out so, else from the whole file."""
    import json

    with open(path, "rb") as handle:
        handle.readline()
        second = handle.readline()
        if second.startswith(b'"installed":') and second.endswith(b",\n"):
            try:
                return json.loads(b"{" + second[:-2] + b"}")["installed"]
            except ValueError:
                pass
        handle.seek(0)
        document = json.load(handle)
    return document.get("installed") if isinstance(document, dict) else None


def _strings(row: object, size: int, required: int) -> bool:
    return (
        isinstance(row, list)
        and len(row) == size
        and all(isinstance(v, str) for v in row[:required])
        and all(v is None or isinstance(v, str) for v in row[required:])
    )


def _all_rows_valid(rows: list[Any]) -> bool:
    size = len(INDEX_FIELDS)
    return all(
        type(row) is list and len(row) == size and type(row[0]) is str and type(row[1]) is str
        for row in rows
    ) and {type(value) for row in rows for value in row[2:]} <= {str, type(None)}


def _infos(document: Mapping[str, Any]) -> list[ActionInfo]:
    if "index" in document:
        if document.get("index_fields") != list(INDEX_FIELDS):
            raise ValueError(f"index_fields must be {list(INDEX_FIELDS)}")
        rows = document["index"]
        if not isinstance(rows, list):
            raise ValueError("'index' must be a list")
        if not _all_rows_valid(rows):  # one cheap pass for all; per row only to name the bad one
            for number, row in enumerate(rows):
                if not _strings(row, len(INDEX_FIELDS), 2):
                    raise ValueError(f"index[{number}]: expected {list(INDEX_FIELDS)}, got {row!r}")
        return list(map(ActionInfo._make, rows))
    entries = document.get("actions")
    if not isinstance(entries, list):
        raise ValueError("'actions' is missing or not a list")
    infos = []
    for number, entry in enumerate(entries):
        row = [entry.get(key) for key in INDEX_FIELDS] if isinstance(entry, dict) else None
        if not _strings(row, len(INDEX_FIELDS), 2):
            raise ValueError(
                f"actions[{number}]: needs 'name' and 'target' strings; "
                f"{', '.join(INDEX_FIELDS[2:])} must be strings or null"
            )
        infos.append(ActionInfo(*row))  # type: ignore[misc]
    return infos


def _hooks(document: Mapping[str, Any]) -> list[HookEntry]:
    entries = document.get("hooks", [])
    hooks = []
    for number, entry in enumerate(entries if isinstance(entries, list) else [None]):
        row = [entry.get(key) for key in HookEntry._fields] if isinstance(entry, dict) else None
        if not _strings(row, 3, 2):
            raise ValueError(f"hooks[{number}]: needs 'name' and 'target' strings")
        hooks.append(HookEntry(*row))  # type: ignore[misc]
    return hooks


def read_manifest(path: str | Path, *, check_fresh: bool = True) -> Registry:
    """A Registry from the manifest at ``path`` (see Registry.from_manifest)."""
    where = os.fspath(path)
    try:
        document, head_only = _read(where)
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
        infos = _infos(document)
        hooks = _hooks(document)
        environment = document.get("environment")
        if not (
            isinstance(environment, dict)
            and isinstance(environment.get("paths"), dict)
            and isinstance(environment.get("plugins"), dict)
        ):
            raise ValueError("'environment' is missing or lacks 'paths' and 'plugins'")
    except ValueError as error:
        raise ManifestError(where, f"malformed: {error}") from None
    if check_fresh:
        _check(where, environment, None if head_only else document)
    return Registry(infos, hook_entries=hooks, source=f"manifest {where}")


def _check(where: str, environment: Mapping[str, Any], whole: Mapping[str, Any] | None) -> None:
    from ._freshness import unchanged

    try:
        if unchanged(environment["paths"], environment["plugins"]):
            return
        installed = whole.get("installed") if whole is not None else _read_installed(where)
        if not isinstance(installed, dict):
            raise TypeError("'installed' is missing")
        reason = stale_reason(environment["paths"], environment["plugins"], installed)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, OSError) as error:
        raise ManifestError(where, f"malformed environment record: {error}") from None
    if reason is not None:
        raise StaleManifestError(where, reason)


def scheduled_actions(path: str | Path) -> list[str]:
    """The actions whose policy in the manifest at ``path`` declares a schedule (reads the whole
    file, imports nothing)."""
    import json

    where = os.fspath(path)
    try:
        with open(where, "rb") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as error:
        raise ManifestError(where, f"cannot read its actions: {error}") from None
    names = []
    for entry in document.get("actions", []) if isinstance(document, dict) else []:
        policy = entry.get("policy") if isinstance(entry, dict) else None
        if isinstance(policy, dict) and (policy.get("schedule") or policy.get("every")):
            names.append(str(entry.get("name")))
    return names
