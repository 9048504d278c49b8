"""A reader for the plain TOML that pyproject files are written in, several times faster
than tomllib; anything else is left to tomllib.

:func:`loads` returns exactly what ``tomllib.loads`` returns, or None when the text uses
anything outside a small subset: then the caller reads it with tomllib, which also reports
every error. The subset:

- comment and blank lines, LF line ends (a CR anywhere: None);
- table headers ``[a.b."c.d"]`` (no arrays of tables);
- ``key = value`` with one key per line (no dotted keys); keys bare, ``"quoted"`` or
  ``'literal'``;
- values: single-line strings without escapes (basic or literal), ``true``, ``false``,
  decimal integers, arrays (over several lines, with comments and a trailing comma) and
  one-line inline tables of these.

Every rule TOML sets on that subset is checked (no key or table defined twice, no table
extending an inline table or a value, no control characters), and a breach returns None, so
that tomllib raises its own error for it. The tests compare the two on tricky and on
randomly damaged files.
"""

from __future__ import annotations

import re
from typing import Any

_KEY = r"""(?:[A-Za-z0-9_-]+|"[^"\\\n]*"|'[^'\n]*')"""
_ILLEGAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters (and CR)
_SKIP_LINES = re.compile(r"(?:[ \t]*(?:#[^\n]*)?(?:\n|\Z))*")
_HEADER = re.compile(
    rf"\[[ \t]*({_KEY}(?:[ \t]*\.[ \t]*{_KEY})*)[ \t]*\][ \t]*(?:#[^\n]*)?(?:\n|\Z)"
)
_HEADER_KEY = re.compile(rf"[ \t]*({_KEY})[ \t]*\.?")
_KEY_EQUALS = re.compile(rf"[ \t]*({_KEY})[ \t]*=[ \t]*")
_LINE_END = re.compile(r"[ \t]*(?:#[^\n]*)?(?:\n|\Z)")
_BASIC = re.compile(r'"([^"\\\n]*)"')
_LITERAL = re.compile(r"'([^'\n]*)'")
_INTEGER = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)")
_ARRAY_SPACE = re.compile(r"(?:[ \t\n]|#[^\n]*)*")
_INLINE_SPACE = re.compile(r"[ \t]*")


class _Unsupported(Exception):
    """The text leaves the subset (or is not valid TOML): tomllib must read it."""


def loads(text: str) -> dict[str, Any] | None:
    """``tomllib.loads(text)`` for plain TOML, or None when tomllib must read the text."""
    if _ILLEGAL.search(text):
        return None
    try:
        return _Reader(text).document()
    except _Unsupported:
        return None


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a pattern that may match nothing stops matching from ``pos``."""
    found = pattern.match(text, pos)
    return found.end() if found else pos


def _key(token: str) -> str:
    return token[1:-1] if token[0] in "\"'" else token


class _Reader:
    __slots__ = ("defined", "frozen", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.defined: set[tuple[str, ...]] = set()
        """Tables defined by a header (a second header for one is an error)."""
        self.frozen: set[int] = set()
        """Inline tables (by id): complete where they are written, no header may extend them."""

    def document(self) -> dict[str, Any]:
        text = self.text
        root: dict[str, Any] = {}
        table = root
        end = len(text)
        while True:
            self.pos = _end(_SKIP_LINES, text, self.pos)
            if self.pos >= end:
                return root
            while text[self.pos] in " \t":
                self.pos += 1
            if text[self.pos] == "[":
                table = self.header(root)
                continue
            found = _KEY_EQUALS.match(text, self.pos)
            if found is None:
                raise _Unsupported
            key = _key(found.group(1))
            self.pos = found.end()
            value = self.value()
            if key in table:
                raise _Unsupported
            table[key] = value
            after = _LINE_END.match(text, self.pos)
            if after is None:
                raise _Unsupported
            self.pos = after.end()

    def header(self, root: dict[str, Any]) -> dict[str, Any]:
        found = _HEADER.match(self.text, self.pos)
        if found is None:
            raise _Unsupported
        self.pos = found.end()
        keys = tuple(_key(k.group(1)) for k in _HEADER_KEY.finditer(found.group(1)))
        if keys in self.defined:
            raise _Unsupported
        self.defined.add(keys)
        node = root
        for key in keys:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict) or id(child) in self.frozen:
                raise _Unsupported
            node = child
        return node

    def value(self) -> Any:
        text, pos = self.text, self.pos
        first = text[pos : pos + 1]
        if first == '"' or first == "'":
            if text.startswith(first * 3, pos):
                raise _Unsupported  # multi-line strings
            found = (_BASIC if first == '"' else _LITERAL).match(text, pos)
            if found is None:
                raise _Unsupported  # escapes, or an unclosed string
            self.pos = found.end()
            return found.group(1)
        if text.startswith("true", pos):
            self.pos = pos + 4
            return True
        if text.startswith("false", pos):
            self.pos = pos + 5
            return False
        if first == "[":
            return self.array()
        if first == "{":
            return self.inline_table()
        found = _INTEGER.match(text, pos)
        if found is None:
            raise _Unsupported
        self.pos = found.end()
        return int(found.group().replace("_", ""))

    def array(self) -> list[Any]:
        items: list[Any] = []
        text = self.text
        self.pos = _end(_ARRAY_SPACE, text, self.pos + 1)
        while text[self.pos : self.pos + 1] != "]":
            items.append(self.value())
            self.pos = _end(_ARRAY_SPACE, text, self.pos)
            separator = text[self.pos : self.pos + 1]
            if separator == ",":
                self.pos = _end(_ARRAY_SPACE, text, self.pos + 1)
            elif separator != "]":
                raise _Unsupported
        self.pos += 1
        return items

    def inline_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {}
        text = self.text
        self.pos = _end(_INLINE_SPACE, text, self.pos + 1)
        if text[self.pos : self.pos + 1] != "}":
            while True:
                found = _KEY_EQUALS.match(text, self.pos)
                if found is None:
                    raise _Unsupported
                key = _key(found.group(1))
                self.pos = found.end()
                value = self.value()
                if key in table:
                    raise _Unsupported
                table[key] = value
                self.pos = _end(_INLINE_SPACE, text, self.pos)
                separator = text[self.pos : self.pos + 1]
                self.pos += 1
                if separator == "}":
                    break
                if separator != ",":
                    raise _Unsupported
        else:
            self.pos += 1
        self.frozen.add(id(table))
        return table
