"""Reading TOML files with errors that name the file and the line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ._errors import WorkspaceError

_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")


def display(path: Path, root: Path | None = None) -> str:
    """A path as a person wants to read it: relative to the root when below it."""
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def parse(text: str, where: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes a WorkspaceError naming ``where`` and the line.

    Plain files (most pyproject files) are read by the fast reader, the rest by tomllib.
    """
    from ._fasttoml import loads

    fast = loads(text)
    if fast is not None:
        return fast
    import tomllib  # only when needed: it costs start-up time

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _AT_LINE.search(message)
        if at:
            location = f"{where}:{at.group(1)}:{at.group(2)}"
            message = message[: at.start()]
        elif _AT_END.search(message):
            location = f"{where}:{text.count(chr(10)) + 1}"
            message = _AT_END.sub("", message)
        else:  # pragma: no cover - every tomllib message carries a position
            location = where
        raise WorkspaceError(f"{location}: invalid TOML: {message}") from None


def load(path: Path, root: Path | None = None) -> tuple[dict[str, Any], str]:
    """Read and parse one TOML file, returning the table and the raw text (for line lookups)."""
    where = display(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkspaceError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{where}: cannot read: {exc}") from None
    return parse(text, where), text


def line_of(text: str, needle: str) -> int:
    """The 1-based line where ``needle`` first occurs in ``text``, preferring it as a quoted
    string, then as a key (1 when it does not occur)."""
    for candidate in (f'"{needle}"', f"{needle} =", f"{needle}=", needle):
        index = text.find(candidate)
        if index >= 0:
            return text.count("\n", 0, index) + 1
    return 1
