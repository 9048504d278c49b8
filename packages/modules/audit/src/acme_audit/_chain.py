"""The hash chain: each entry's hash covers its content and the previous entry's hash.

An entry is one JSON object per line (JSON Lines). Its ``hash`` is the SHA-256 of the
canonical JSON (sorted keys, no spaces, UTF-8) of every other field, ``prev`` included, so
changing, removing or reordering any entry breaks every link after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

GENESIS: Final = "0" * 64
FIELDS: Final = frozenset({"seq", "at", "actor", "action", "target", "data", "prev", "hash"})

Problem = Literal["malformed", "sequence_gap", "broken_link", "hash_mismatch"]


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def entry_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in fields.items() if k != "hash"})).hexdigest()


def seal(fields: dict[str, Any]) -> dict[str, Any]:
    """Return the fields with their ``hash`` added."""
    return {**fields, "hash": entry_hash(fields)}


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The entry on a line, or None when it is not a well-formed entry."""
    try:
        raw = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(raw, dict) or set(raw) != FIELDS:
        return None
    if type(raw["seq"]) is not int or not isinstance(raw["hash"], str):
        return None
    if not isinstance(raw["prev"], str) or not isinstance(raw["data"], dict):
        return None
    return raw


@dataclass(frozen=True, slots=True)
class Break:
    line: int
    seq: int | None
    problem: Problem


@dataclass(frozen=True, slots=True)
class Walk:
    count: int
    head_seq: int
    head_hash: str
    first_break: Break | None
    hashes_at: dict[int, str]


def walk(lines: Iterable[bytes], *, keep: frozenset[int] = frozenset()) -> Walk:
    """Check every link; stop at the first break. ``keep``: sequence numbers to remember."""
    prev, expected, count = GENESIS, 1, 0
    kept: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        entry = parse_line(line)
        problem: Problem | None = None
        if entry is None:
            problem = "malformed"
        elif entry["seq"] != expected:
            problem = "sequence_gap"
        elif entry["prev"] != prev:
            problem = "broken_link"
        elif entry_hash(entry) != entry["hash"]:
            problem = "hash_mismatch"
        if problem is not None:
            seq = None if entry is None else entry["seq"]
            return Walk(count, expected - 1, prev, Break(number, seq, problem), kept)
        assert entry is not None
        prev, expected, count = entry["hash"], expected + 1, count + 1
        if entry["seq"] in keep:
            kept[entry["seq"]] = prev
    return Walk(count, expected - 1, prev, None, kept)


def lines_of(handle: Iterable[bytes]) -> Iterator[bytes]:
    for line in handle:
        stripped = line.rstrip(b"\n")
        if stripped:
            yield stripped
