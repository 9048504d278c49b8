"""Words: tokenizing, counting, reading time, and truncation at a word boundary."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Final

# A word is a run of letters/digits, possibly joined by an apostrophe or hyphen inside it
# ("don't", "state-of-the-art" counts as one word, as people count it).
_WORD: Final = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """The words of ``text``, NFKC-normalized and case-folded, in order."""
    normalized = unicodedata.normalize("NFKC", text).casefold()
    return _WORD.findall(normalized)


def word_count(text: str) -> int:
    """How many words ``text`` has."""
    return sum(1 for _ in _WORD.finditer(text))


def reading_minutes(words: int, *, words_per_minute: int = 230) -> int:
    """Whole minutes to read ``words`` words, rounded up; 0 only for no words."""
    if words_per_minute <= 0:
        raise ValueError(f"words_per_minute must be positive, got {words_per_minute}")
    return math.ceil(words / words_per_minute)


def truncate(text: str, max_chars: int, *, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``max_chars`` characters at a word boundary, with ``ellipsis``.

    Whitespace runs are collapsed first. Text that already fits is returned unchanged (but
    collapsed). A first word longer than the room left is cut inside the word.
    """
    if max_chars < len(ellipsis):
        raise ValueError(f"max_chars ({max_chars}) is shorter than the ellipsis {ellipsis!r}")
    collapsed = " ".join(text.split())
    if len(collapsed) <= max_chars:
        return collapsed
    room = max_chars - len(ellipsis)
    cut = collapsed[: room + 1]
    space = cut.rfind(" ")
    head = cut[:space] if space > 0 else collapsed[:room]
    return head.rstrip(" ,;:.-\u2013\u2014") + ellipsis
