"""Cosine similarity over unit vectors with numpy: how acme-search ranks documents when the
database has no pgvector (see ``_store``). The vectors come from the database's
``search_documents`` table; nothing is kept in files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acme_search._embed import Vector


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float
    metadata: dict[str, str]


@dataclass(slots=True)
class VectorIndex:
    """Documents' unit vectors and metadata, searchable by cosine similarity."""

    dim: int
    ids: list[str] = field(default_factory=list)
    vectors: Vector = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    metadata: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.vectors.shape != (len(self.ids), self.dim):
            self.vectors = np.zeros((len(self.ids), self.dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, doc_id: str, vector: Vector, metadata: dict[str, str]) -> bool:
        """Add or replace a document; True when it replaced one."""
        if vector.shape != (self.dim,):
            raise ValueError(f"vector has shape {vector.shape}, the index wants ({self.dim},)")
        if doc_id in self.ids:
            row = self.ids.index(doc_id)
            self.vectors[row] = vector
            self.metadata[row] = dict(metadata)
            return True
        self.ids.append(doc_id)
        self.metadata.append(dict(metadata))
        self.vectors = np.vstack([self.vectors, vector[np.newaxis, :]]).astype(np.float32)
        return False

    def remove(self, doc_id: str) -> bool:
        """Remove a document; False when it was not there."""
        if doc_id not in self.ids:
            return False
        row = self.ids.index(doc_id)
        del self.ids[row]
        del self.metadata[row]
        self.vectors = np.delete(self.vectors, row, axis=0)
        return True

    def query(self, vector: Vector, k: int, min_score: float | None = None) -> list[Hit]:
        """The ``k`` documents most similar to ``vector``, best first (ties by id)."""
        if not self.ids or k < 1:
            return []
        scores = self.vectors @ vector.astype(np.float32)
        if k < len(scores):
            # The k best in O(n), then only those sorted; rows tied with the k-th are kept so
            # that ties break by id, not by storage order.
            kth = float(np.partition(scores, len(scores) - k)[len(scores) - k])
            candidates = np.flatnonzero(scores >= kth)
        else:
            candidates = np.arange(len(scores))
        order = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), self.ids[i]))
        hits = [Hit(self.ids[i], float(scores[i]), dict(self.metadata[i])) for i in order[:k]]
        if min_score is not None:
            hits = [h for h in hits if h.score >= min_score]
        return hits
