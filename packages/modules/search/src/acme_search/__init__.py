"""Vector search for Switchyard: feature-hashed text embeddings and a persisted cosine index.

The actions live in :mod:`acme_search.actions`. Importing this package imports numpy.
"""

from __future__ import annotations

from acme_search._embed import DEFAULT_DIM, embed
from acme_search._index import (
    ENV_VAR,
    Hit,
    IndexFileError,
    IndexPathError,
    VectorIndex,
    locked_index,
    resolve_index_path,
)

__all__ = [
    "DEFAULT_DIM",
    "ENV_VAR",
    "Hit",
    "IndexFileError",
    "IndexPathError",
    "VectorIndex",
    "embed",
    "locked_index",
    "resolve_index_path",
]
