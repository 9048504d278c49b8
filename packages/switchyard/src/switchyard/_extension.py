"""Extensions the core finds by name, on first use: entry points in the group
``switchyard.extensions`` (``db`` from switchyard-db behind ``ctx.db``, ``cache`` from
switchyard-rq behind cached results). The core imports none of them: ``import switchyard`` stays
free of psycopg and redis, and a process that never asks for one never reads the metadata.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from ._errors import SwitchyardError

__all__ = ["GROUP", "extension", "find_extension", "set_extension"]

GROUP: Final = "switchyard.extensions"
_MISSING: Final = object()
_found: dict[str, Any] = {}
_lock = threading.Lock()
_HINTS: Final = {
    "db": "ctx.db() needs the switchyard-db package (pip install switchyard-db)",
    "cache": "cached results need a cache backend (pip install switchyard-rq)",
}


def _scan(name: str) -> Any:
    from ._metadata import installed, read_entry_points

    for dist in installed():
        for entry_name, value in read_entry_points(dist.path, GROUP).get(GROUP, ()):
            if entry_name != name:
                continue
            import importlib

            module, _, attribute = value.partition(":")
            try:
                found: Any = importlib.import_module(module.strip())
                for part in attribute.strip().split(".") if attribute else ():
                    found = getattr(found, part)
            except Exception as error:
                raise SwitchyardError(
                    f"cannot load extension {name} from {dist.name} ({value}): "
                    f"{type(error).__name__}: {error}"
                ) from error
            return found
    return _MISSING


def find_extension(name: str) -> Any | None:
    """The object the extension ``name`` names (loaded once per process), or None."""
    found = _found.get(name, _MISSING)
    if found is _MISSING:
        with _lock:
            found = _found.get(name, _MISSING)
            if found is _MISSING:
                found = _found[name] = _scan(name)
    return None if found is _MISSING else found


def extension(name: str) -> Any:
    """Like :func:`find_extension`, raising a SwitchyardError that says what to install."""
    found = find_extension(name)
    if found is None:
        raise SwitchyardError(_HINTS.get(name, f"no extension {name!r} is installed"))
    return found


def set_extension(name: str, value: Any | None) -> None:
    """Use ``value`` as extension ``name`` in this process (tests); None: look it up again."""
    with _lock:
        if value is None:
            _found.pop(name, None)
        else:
            _found[name] = value
