"""Feature-hashed text embeddings: words and word pairs hashed into a fixed number of signed
buckets, weighted by sublinear term frequency, L2-normalized.

The hash is BLAKE2b, not Python's ``hash()``, so an embedding is the same in every process and
an index written by one worker can be queried by another.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter
from typing import Final

import numpy as np
import numpy.typing as npt
from acme_text import tokenize

DEFAULT_DIM: Final = 256
BIGRAM_WEIGHT: Final = 0.5

Vector = npt.NDArray[np.float32]


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    h = int.from_bytes(digest, "little")
    return h % dim, (1.0 if h >> 63 == 0 else -1.0)


def embed(text: str, dim: int = DEFAULT_DIM) -> Vector:
    """The unit-length embedding of ``text`` (all zeros when it has no words)."""
    if dim < 1:
        raise ValueError(f"dim must be positive, got {dim}")
    words = tokenize(text)
    weights: Counter[str] = Counter(words)
    pairs: Counter[str] = Counter(f"{a} {b}" for a, b in itertools.pairwise(words))
    vector = np.zeros(dim, dtype=np.float32)
    for features, scale in ((weights, 1.0), (pairs, BIGRAM_WEIGHT)):
        for feature, count in features.items():
            index, sign = _bucket(feature, dim)
            vector[index] += sign * scale * (1.0 + math.log(count))
    norm = float(np.linalg.norm(vector))
    if norm > 0.0:
        vector /= norm
    return vector
