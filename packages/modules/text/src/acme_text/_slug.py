"""Unicode-aware slugs: normalize, fold case, keep letters and digits, join with a separator."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Letters that NFKD does not decompose into an ASCII base letter plus combining marks.
_ASCII_FOLDS: Final = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "ł": "l",
        "Ł": "L",
        "\u0131": "i",  # dotless i
    }
)
_NON_WORD: Final = re.compile(r"[^\w]+|_+")


def slugify(
    text: str,
    *,
    separator: str = "-",
    max_length: int = 80,
    allow_unicode: bool = False,
) -> str:
    """Turn ``text`` into a URL-safe slug.

    ``"Crème Brûlée — Straße 5"`` becomes ``"creme-brulee-strasse-5"``. With
    ``allow_unicode`` letters outside ASCII are kept (NFKC-normalized and case-folded), so
    ``"Привет мир"`` becomes ``"привет-мир"``; without it they are transliterated where Unicode
    decomposition allows and dropped otherwise. The slug is cut at a separator so that it is at
    most ``max_length`` characters; it may be empty when nothing in ``text`` survives.
    """
    if allow_unicode:
        folded = unicodedata.normalize("NFKC", text).casefold()
    else:
        decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLDS))
        folded = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    words = [w for w in _NON_WORD.split(folded) if w]
    slug = ""
    for word in words:
        candidate = f"{slug}{separator}{word}" if slug else word
        if len(candidate) > max_length:
            if not slug:  # a single word longer than the limit: cut the word itself
                slug = word[:max_length]
            break
        slug = candidate
    return slug
