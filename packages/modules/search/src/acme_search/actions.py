"""The search actions: ``search.embed_text``, ``search.index_document``,
``search.remove_document``, ``search.query``, ``search.stats``.

The index file comes from the input's ``index_path`` or, when that is absent, from the
``ACME_SEARCH_INDEX`` environment variable of the process that runs the action (the worker).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from switchyard import action

from acme_search._embed import DEFAULT_DIM, embed
from acme_search._index import VectorIndex, locked_index, resolve_index_path

DocId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]*$",
        description="letters, digits and _ . : / @ -, starting with a letter or digit",
    ),
]
Text = Annotated[str, Field(min_length=1, max_length=100_000)]
IndexPath = Annotated[
    str,
    Field(
        min_length=5,
        max_length=4096,
        pattern=r"\.npz$",
        description="the index file (.npz); default: $ACME_SEARCH_INDEX",
    ),
]
Dim = Annotated[int, Field(ge=16, le=4096)]
Metadata = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
        Annotated[str, Field(max_length=1024)],
    ],
    Field(max_length=32),
]


class EmbedTextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text
    dim: Dim = DEFAULT_DIM


class EmbedTextOut(BaseModel):
    dim: int
    nonzero: int
    vector: list[float]


@action(
    "search.embed_text",
    description="Embed text as a unit vector by feature hashing (words and word pairs).",
)
def embed_text(data: EmbedTextIn) -> EmbedTextOut:
    vector = embed(data.text, data.dim)
    return EmbedTextOut(
        dim=data.dim, nonzero=int((vector != 0).sum()), vector=[float(x) for x in vector]
    )


class IndexDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: DocId
    text: Text
    metadata: Metadata = Field(default_factory=dict)
    index_path: IndexPath | None = None
    dim: Dim | None = Field(default=None, description=f"for a new index; default {DEFAULT_DIM}")


class IndexDocumentOut(BaseModel):
    id: str
    replaced: bool
    created_index: bool
    documents: int


@action(
    "search.index_document",
    description="Add or replace a document in the vector index file.",
    idempotent=True,
)
def index_document(data: IndexDocumentIn) -> IndexDocumentOut:
    path = resolve_index_path(data.index_path)
    with locked_index(path):
        created = not path.exists()
        index = VectorIndex(dim=data.dim or DEFAULT_DIM) if created else VectorIndex.load(path)
        if data.dim is not None and data.dim != index.dim:
            raise ValueError(
                f"the index at {path} has dim {index.dim}, not {data.dim}; "
                "leave dim out or use another index_path"
            )
        replaced = index.add(data.id, embed(data.text, index.dim), data.metadata)
        index.save(path)
    return IndexDocumentOut(
        id=data.id, replaced=replaced, created_index=created, documents=len(index)
    )


class RemoveDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: DocId
    index_path: IndexPath | None = None


class RemoveDocumentOut(BaseModel):
    id: str
    removed: bool
    documents: int


@action("search.remove_document", description="Remove a document from the vector index file.")
def remove_document(data: RemoveDocumentIn) -> RemoveDocumentOut:
    path = resolve_index_path(data.index_path)
    with locked_index(path):
        index = VectorIndex.load(path)
        removed = index.remove(data.id)
        if removed:
            index.save(path)
    return RemoveDocumentOut(id=data.id, removed=removed, documents=len(index))


class QueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text
    k: int = Field(default=10, ge=1, le=100)
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
    index_path: IndexPath | None = None


class HitOut(BaseModel):
    id: str
    score: float
    metadata: dict[str, str]


class QueryOut(BaseModel):
    hits: list[HitOut]
    documents: int


@action("search.query", description="The k documents most similar to a text (cosine), best first.")
def query(data: QueryIn) -> QueryOut:
    index = VectorIndex.load(resolve_index_path(data.index_path))
    hits = index.query(embed(data.text, index.dim), data.k, data.min_score)
    return QueryOut(
        hits=[HitOut(id=h.id, score=h.score, metadata=h.metadata) for h in hits],
        documents=len(index),
    )


class StatsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index_path: IndexPath | None = None


class StatsOut(BaseModel):
    path: str
    documents: int
    dim: int
    size_bytes: int


@action("search.stats", description="Where the index file is, its size and document count.")
def stats(data: StatsIn) -> StatsOut:
    path = resolve_index_path(data.index_path)
    index = VectorIndex.load(path)
    return StatsOut(
        path=str(path), documents=len(index), dim=index.dim, size_bytes=path.stat().st_size
    )
