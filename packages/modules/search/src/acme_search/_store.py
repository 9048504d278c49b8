"""Documents and their embeddings in PostgreSQL (``search_documents``), ranked by cosine
similarity: by pgvector in the database when the server has it, else with numpy here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, Literal

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from acme_search._embed import Vector
from acme_search._index import Hit, VectorIndex

Engine = Literal["pgvector", "numpy"]
_ENGINES: dict[tuple[str, int, str], Engine] = {}
_TABLE: Final = "search_documents"


def _literal(vector: Vector) -> str:
    return "[" + ",".join(f"{float(x):.8g}" for x in vector) + "]"


class DocumentStore:
    """Documents over one connection (a transaction of ``ctx.db("main").connection()``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @property
    def engine(self) -> Engine:
        """pgvector when the migration found it on this server (a ``vec`` column), else numpy."""
        info = self._conn.info
        key = (info.host, info.port, info.dbname)
        found = _ENGINES.get(key)
        if found is None:
            row = self._conn.execute(
                "SELECT 1 FROM information_schema.columns"
                " WHERE table_name = %s AND column_name = 'vec'",
                (_TABLE,),
            ).fetchone()
            found = _ENGINES[key] = "pgvector" if row else "numpy"
        return found

    def upsert(self, doc_id: str, vector: Vector, metadata: dict[str, str]) -> bool:
        """Add or replace a document; True when it replaced one."""
        values = [float(x) for x in vector]
        vec = ", vec = %s::vector" if self.engine == "pgvector" else ""
        insert_vec = (", vec", ", %s::vector") if self.engine == "pgvector" else ("", "")
        params: list[Any] = [doc_id, len(values), values, Jsonb(metadata), datetime.now(UTC)]
        if self.engine == "pgvector":
            params.append(_literal(vector))
        row = self._conn.execute(
            f"INSERT INTO {_TABLE} (id, dim, embedding, metadata, updated_at{insert_vec[0]})"
            f" VALUES (%s, %s, %s, %s, %s{insert_vec[1]})"
            " ON CONFLICT (id) DO UPDATE SET dim = EXCLUDED.dim, embedding = EXCLUDED.embedding,"
            " metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at"
            + (", vec = EXCLUDED.vec" if vec else "")
            + " RETURNING (xmax <> 0)",
            params,
        ).fetchone()
        return bool(row and row[0])

    def remove(self, doc_id: str) -> bool:
        cursor = self._conn.execute(f"DELETE FROM {_TABLE} WHERE id = %s", (doc_id,))
        return cursor.rowcount > 0

    def count(self, dim: int | None = None) -> int:
        if dim is None:
            row = self._conn.execute(f"SELECT count(*) FROM {_TABLE}").fetchone()
        else:
            row = self._conn.execute(
                f"SELECT count(*) FROM {_TABLE} WHERE dim = %s", (dim,)
            ).fetchone()
        return int(row[0]) if row else 0

    def query(self, vector: Vector, k: int, min_score: float | None) -> list[Hit]:
        """The ``k`` documents of the vector's dimension most similar to it, best first (ties
        by id)."""
        dim = int(vector.shape[0])
        if self.engine == "pgvector" and bool(np.any(vector)):
            literal = _literal(vector)
            rows = self._conn.execute(
                f"SELECT id, 1 - (vec <=> %s::vector) AS score, metadata FROM {_TABLE}"
                " WHERE dim = %s ORDER BY vec <=> %s::vector, id LIMIT %s",
                (literal, dim, literal, k),
            ).fetchall()
            hits = [Hit(str(r[0]), float(r[1]), dict(r[2])) for r in rows]
            if min_score is not None:
                hits = [h for h in hits if h.score >= min_score]
            return hits
        rows = self._conn.execute(
            f"SELECT id, embedding, metadata FROM {_TABLE} WHERE dim = %s ORDER BY id", (dim,)
        ).fetchall()
        index = VectorIndex(
            dim=dim,
            ids=[str(r[0]) for r in rows],
            vectors=np.array([r[1] for r in rows], dtype=np.float32).reshape(len(rows), dim),
            metadata=[dict(r[2]) for r in rows],
        )
        return index.query(vector, k, min_score)

    def size_bytes(self) -> int:
        row = self._conn.execute(f"SELECT pg_total_relation_size('{_TABLE}')").fetchone()
        return int(row[0]) if row else 0
