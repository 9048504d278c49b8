"""Vector search for Switchyard: feature-hashed text embeddings, documents in PostgreSQL ranked
by cosine similarity (pgvector in the database when the server has it, numpy otherwise).

The actions live in :mod:`acme_search.actions`. Importing this package imports numpy.
"""

from __future__ import annotations

from acme_search._embed import DEFAULT_DIM, embed
from acme_search._index import Hit, VectorIndex
from acme_search._store import DocumentStore

__all__ = ["DEFAULT_DIM", "DocumentStore", "Hit", "VectorIndex", "embed"]
