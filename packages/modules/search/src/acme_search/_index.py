"""A cosine-similarity vector index held in one .npz file.

The file holds the ids, a float32 matrix of unit vectors (one row per document), and each
document's metadata as JSON; it is read with ``allow_pickle=False`` and replaced atomically. A
read-modify-write holds an exclusive ``flock`` on a ``.lock`` file beside it, so concurrent
workers sharing a disk do not lose each other's updates.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from acme_search._embed import Vector

ENV_VAR: Final = "ACME_SEARCH_INDEX"
FORMAT: Final = 1


class IndexPathError(ValueError):
    """No usable index path was given."""


class IndexFileError(ValueError):
    """An index file is missing, unreadable, or not an index."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


def resolve_index_path(explicit: str | None) -> Path:
    """The index file to use: ``explicit``, else ``$ACME_SEARCH_INDEX``."""
    raw = explicit or os.environ.get(ENV_VAR, "")
    if not raw:
        raise IndexPathError(
            f"no search index path: pass index_path or set {ENV_VAR} to a .npz file path"
        )
    path = Path(raw).expanduser()
    if path.suffix != ".npz":
        raise IndexPathError(f"{ENV_VAR}={raw!r}: the index path must end in .npz")
    return path


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

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index file; :class:`IndexFileError` when it is missing or not an index."""
        if not path.exists():
            raise IndexFileError(path, "no index here yet; index a document first")
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format"])
                dim = int(data["dim"])
                ids = [str(x) for x in data["ids"]]
                vectors = np.asarray(data["vectors"], dtype=np.float32)
                metadata = json.loads(str(data["metadata"]))
        except (OSError, KeyError, ValueError) as exc:
            raise IndexFileError(path, f"not a readable search index ({exc})") from exc
        if version != FORMAT:
            raise IndexFileError(path, f"index format {version} is not supported (want {FORMAT})")
        if vectors.shape != (len(ids), dim) or len(metadata) != len(ids):
            raise IndexFileError(path, "index is inconsistent: ids, vectors and metadata differ")
        return cls(dim=dim, ids=ids, vectors=vectors, metadata=metadata)

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically (a temporary file, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(
                    handle,
                    format=np.array(FORMAT),
                    dim=np.array(self.dim),
                    ids=np.array(self.ids, dtype=np.str_),
                    vectors=self.vectors,
                    metadata=np.array(json.dumps(self.metadata)),
                )
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def locked_index(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s index for a read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
