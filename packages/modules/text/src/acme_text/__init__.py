"""Text helpers for Switchyard: slugs, word counts, truncation, and markdown rendering.

The functions re-exported here are plain, dependency-free helpers that other modules (assets,
search) build on. The actions live in :mod:`acme_text.actions`, which imports the markdown
library; importing this package does not.
"""

from __future__ import annotations

from acme_text._slug import slugify
from acme_text._words import reading_minutes, tokenize, truncate, word_count

__all__ = ["reading_minutes", "slugify", "tokenize", "truncate", "word_count"]
