"""The search actions: ``search.embed_text``, ``search.index_document``,
``search.remove_document``, ``search.query``, ``search.stats``.

Documents live in the ``main`` database (``ctx.db()``), in ``search_documents``; queries rank
them by cosine similarity with pgvector when the server has it (the embedded one does), else
with numpy. Inputs carry data only: no input names a file or a database.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from switchyard import Context, action

from acme_search._embed import DEFAULT_DIM, embed
from acme_search._store import DocumentStore

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
    dim: Dim = Field(default=DEFAULT_DIM, description="the embedding's size; queries use one")


class IndexDocumentOut(BaseModel):
    id: str
    replaced: bool
    documents: int


@action(
    "search.index_document",
    description="Add or replace a document (its embedding and metadata) in the database.",
    idempotent=True,
)
def index_document(data: IndexDocumentIn, ctx: Context) -> IndexDocumentOut:
    vector = embed(data.text, data.dim)
    with ctx.db().connection() as conn:
        store = DocumentStore(conn)
        replaced = store.upsert(data.id, vector, data.metadata)
        documents = store.count()
    return IndexDocumentOut(id=data.id, replaced=replaced, documents=documents)


class RemoveDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: DocId


class RemoveDocumentOut(BaseModel):
    id: str
    removed: bool
    documents: int


@action("search.remove_document", description="Remove a document from the database.")
def remove_document(data: RemoveDocumentIn, ctx: Context) -> RemoveDocumentOut:
    with ctx.db().connection() as conn:
        store = DocumentStore(conn)
        removed = store.remove(data.id)
        documents = store.count()
    return RemoveDocumentOut(id=data.id, removed=removed, documents=documents)


class QueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text
    k: int = Field(default=10, ge=1, le=100)
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
    dim: Dim = Field(default=DEFAULT_DIM, description="compare with documents of this size")


class HitOut(BaseModel):
    id: str
    score: float
    metadata: dict[str, str]


class QueryOut(BaseModel):
    hits: list[HitOut]
    documents: int
    engine: str = Field(description="pgvector (in the database) or numpy")


@action("search.query", description="The k documents most similar to a text (cosine), best first.")
def query(data: QueryIn, ctx: Context) -> QueryOut:
    vector = embed(data.text, data.dim)
    with ctx.db().read().connection() as conn:
        store = DocumentStore(conn)
        hits = store.query(vector, data.k, data.min_score)
        documents, engine = store.count(data.dim), store.engine
    return QueryOut(
        hits=[HitOut(id=h.id, score=h.score, metadata=h.metadata) for h in hits],
        documents=documents,
        engine=engine,
    )


class StatsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatsOut(BaseModel):
    documents: int
    size_bytes: int
    engine: str


@action("search.stats", description="How many documents, their size in the database, the engine.")
def stats(data: StatsIn, ctx: Context) -> StatsOut:
    with ctx.db().read().connection() as conn:
        store = DocumentStore(conn)
        return StatsOut(documents=store.count(), size_bytes=store.size_bytes(), engine=store.engine)
