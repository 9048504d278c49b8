"""Finding and reading ``[tool.switchyard]`` into plain, validated values (no pydantic).

The ``Config`` value object (``_config.py``) is built from these values; the default registry
reads only its manifest setting from here, so building it does not import pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULTS", "ScheduleTable", "find_pyproject", "read_settings"]

TABLE: Final = "tool.switchyard"
DEFAULTS: Final[Mapping[str, Any]] = {
    "root": None,
    "default_queue": "default",
    "routing": (),
    "redis_url": None,
    "manifest": None,
    "max_payload_bytes": 1_048_576,
    "schedule_table": None,
}
# file key (either spelling) -> field
_KEYS: Final = {
    "default-queue": "default_queue",
    "default_queue": "default_queue",
    "redis-url": "redis_url",
    "redis_url": "redis_url",
    "manifest": "manifest",
    "max-payload-bytes": "max_payload_bytes",
    "max_payload_bytes": "max_payload_bytes",
    "routing": "routing",
    "schedules": "schedule_table",
}
_ENV: Final = {
    "SWITCHYARD_DEFAULT_QUEUE": "default_queue",
    "SWITCHYARD_REDIS_URL": "redis_url",
    "SWITCHYARD_MANIFEST": "manifest",
    "SWITCHYARD_MAX_PAYLOAD_BYTES": "max_payload_bytes",
}


class ScheduleTable:
    """``[tool.switchyard.schedules]`` as written, with the file it came from (for errors that
    name the line); turned into Schedules only when first read (``Config.schedules``)."""

    __slots__ = ("path", "table", "text")

    def __init__(self, path: Path, text: str, table: object) -> None:
        self.path = path
        self.text = text
        self.table = table

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScheduleTable) and (self.path, self.text) == (
            other.path,
            other.text,
        )

    def __hash__(self) -> int:
        return hash((self.path, self.text))

    def __repr__(self) -> str:
        return f"ScheduleTable({self.path})"


def _parse(path: Path) -> tuple[dict[str, Any], str]:
    import re
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(str(path), f"cannot read: {error}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if found is None:
            raise ConfigError(str(path), f"invalid TOML: {message}") from None
        line, column = int(found.group(1)), found.group(2)
        detail = message[: found.start()]
        raise ConfigError(str(path), f"invalid TOML: {detail} (column {column})", line) from None


def _is_root(data: Mapping[str, Any]) -> bool:
    tool = data.get("tool")
    if not isinstance(tool, dict):
        return False
    uv = tool.get("uv")
    return "switchyard" in tool or (isinstance(uv, dict) and "workspace" in uv)


def find_pyproject(start: Path | None = None) -> tuple[Path, dict[str, Any], str] | None:
    """The nearest enclosing pyproject.toml with [tool.uv.workspace] or [tool.switchyard]."""
    folder = (start or Path.cwd()).resolve()
    if folder.is_file():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            data, text = _parse(path)
            if _is_root(data):
                return path, data, text
    return None


def _line_of(text: str, table: str, key: str) -> int | None:
    """The 1-based line where ``key`` is set in ``[table]`` (best effort; None if not found)."""
    import re

    current = ""
    header = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    assign = re.compile(r"^\s*(?:" + re.escape(key) + r"|([\"'])" + re.escape(key) + r"\1)\s*=")
    dotted = table.rsplit(".", 1)
    for number, line in enumerate(text.splitlines(), start=1):
        match = header.match(line)
        if match:
            current = re.sub(r"\s*\.\s*", ".", match.group(1)).replace('"', "")
            continue
        if current == table and assign.match(line):
            return number
        # `routing."auth.*" = "fast"` written under the parent table
        if len(dotted) == 2 and current == dotted[0]:
            prefix = re.compile(
                r"^\s*" + re.escape(dotted[1]) + r"\s*\.\s*([\"']?)" + re.escape(key)
            )
            if prefix.match(line):
                return number
    return None


def _table_values(path: Path, table: Mapping[str, Any], text: str) -> dict[str, Any]:
    def fail(key: str, message: str, table_name: str = TABLE) -> NoReturn:
        raise ConfigError(str(path), f"[{table_name}] {message}", _line_of(text, table_name, key))

    values: dict[str, Any] = {}
    for key, value in table.items():
        field = _KEYS.get(key)
        if field is None:
            if not isinstance(value, dict):  # sub-tables belong to other components
                import logging

                logging.getLogger("switchyard").warning(
                    "%s: unknown setting %r in [%s] ignored", path, key, TABLE
                )
            continue
        if field == "schedule_table":  # checked when first read (Config.schedules): not on start-up
            values[field] = ScheduleTable(path, text, value)
        elif field == "routing":
            if not isinstance(value, dict):
                fail(key, "routing must be a table of glob pattern = queue name")
            rules = []
            for pattern, queue in value.items():
                if not isinstance(queue, str) or not queue.strip():
                    fail(
                        pattern,
                        f"routing rule {pattern!r}: the queue must be a non-empty string, "
                        f"got {queue!r}",
                        f"{TABLE}.routing",
                    )
                rules.append((pattern, queue))
            values[field] = tuple(rules)
        elif field == "max_payload_bytes":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                fail(key, f"{key} must be a positive integer, got {value!r}")
            values[field] = value
        else:
            if not isinstance(value, str) or not value.strip():
                fail(key, f"{key} must be a non-empty string, got {value!r}")
            values[field] = value
    if "manifest" in values:
        values["manifest"] = path.parent / values["manifest"]
    return values


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in _ENV.items():
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        if field == "max_payload_bytes":
            try:
                number = int(raw)
            except ValueError:
                number = 0
            if number <= 0:
                raise ConfigError(f"${name}", f"must be a positive integer, got {raw!r}")
            values[field] = number
        elif field == "manifest":
            values[field] = Path(raw).absolute()
        else:
            values[field] = raw
    return values


def read_settings(
    start: Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Validated settings: defaults, then ``[tool.switchyard]``, then ``SWITCHYARD_*``."""
    values = dict(DEFAULTS)
    found = find_pyproject(start)
    if found is not None:
        path, data, text = found
        values["root"] = path.parent
        table = data.get("tool", {}).get("switchyard", {})
        if not isinstance(table, dict):
            raise ConfigError(
                str(path), f"{TABLE} must be a table", _line_of(text, "tool", "switchyard")
            )
        values.update(_table_values(path, table, text))
    values.update(_env_values(os.environ if environ is None else environ))
    return values
