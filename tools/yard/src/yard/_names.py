"""PEP 503 name normalization and the small glob language yard's configuration uses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_NORMALIZE = re.compile(r"[-_.]+")
# The name at the start of a PEP 508 requirement; the rest is parsed by `packaging`.
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def normalize(name: str) -> str:
    """The PEP 503 normalized form of a project name: ``Foo_Bar`` -> ``foo-bar``."""
    return _NORMALIZE.sub("-", name).lower()


def requirement_name(requirement: str) -> str | None:
    """The normalized project name a PEP 508 requirement starts with, or None if it has none."""
    match = _REQUIREMENT_NAME.match(requirement)
    return normalize(match.group(1)) if match else None


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """Translate a glob to a regex: ``**`` crosses folders, ``*`` and ``?`` stay in one."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    # A pattern that names a folder also matches everything below it.
    return re.compile("".join(out) + "(?:/.*)?")


def glob_match(path: str, patterns: Iterable[str]) -> bool:
    """Whether a ``/``-separated relative path matches any of the glob patterns.

    ``**`` matches any number of folders, ``*`` and ``?`` stay within one path segment, and a
    pattern that matches a folder matches every file below it (``docs`` matches ``docs/a.md``).
    """
    return any(_compile(p.strip("/")).fullmatch(path) for p in patterns)
