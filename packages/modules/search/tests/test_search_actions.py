from __future__ import annotations

import glob
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from acme_search import VectorIndex, embed
from acme_search.actions import embed_text, index_document, query, remove_document, stats
from switchyard import InvalidInputError, Registry, call_action, load_config
from switchyard.testing import make_registry, run, use_cache, use_registry
from switchyard_db.testing import fresh_database, temporary_server

ACTIONS = (
    "search.embed_text",
    "search.index_document",
    "search.remove_document",
    "search.query",
    "search.stats",
)
DOCS = {
    "cats": "Cats purr on the sofa; a kitten chases a ball of wool.",
    "money": "Quarterly invoices, tax rates and the interest on a loan.",
    "cooking": "Slow-cooked tomato sauce with garlic, basil and olive oil.",
}


def _debian_binaries() -> Path:
    """Debian's PostgreSQL (no pgvector): the numpy engine's server."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:  # a failure where services are required (the workspace's conftest.py)
        pytest.skip(
            "missing service: Debian's postgresql (a server without pgvector) for the numpy engine"
        )
    return Path(found[-1]).parent


@pytest.fixture(scope="module", params=["pgvector", "numpy"])
def pg(request, tmp_path_factory):
    binaries = None if request.param == "pgvector" else _debian_binaries()
    with temporary_server(tmp_path_factory.mktemp("pg"), binaries=binaries) as server:
        yield request.param, server


@pytest.fixture
def engine(pg):
    name, server = pg
    with fresh_database(server), use_cache():
        for doc_id, text in DOCS.items():
            run(index_document, {"id": doc_id, "text": text})
        yield name


def test_embeddings_are_unit_length_and_stable():
    out = run(embed_text, {"text": "The cat sat on the mat", "dim": 64})
    vector = np.array(out.vector)
    assert out.dim == 64
    assert vector.shape == (64,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
    assert 0 < out.nonzero <= 11  # 5 distinct words + 5 pairs, some may share a bucket
    assert np.array_equal(embed("the CAT sat on the mat", 64), vector.astype(np.float32))
    assert run(embed_text, {"text": "?!…"}).nonzero == 0


def test_similar_texts_score_higher():
    a = embed("red apples and green pears")
    b = embed("green pears, red apples")
    c = embed("a treatise on railway signalling")
    assert float(a @ b) > 0.6 > float(a @ c)


def test_query_ranks_the_relevant_document_first(engine):
    out = run(query, {"text": "a kitten on the sofa", "k": 2})
    assert (out.documents, out.engine) == (3, engine)
    assert next(h.id for h in out.hits) == "cats"
    assert len(out.hits) == 2
    assert out.hits[0].score > out.hits[1].score


def test_both_engines_score_as_numpy_does(engine):
    out = run(query, {"text": "garlic and tax invoices", "k": 3})
    index = VectorIndex(dim=256)
    for doc_id, text in DOCS.items():
        index.add(doc_id, embed(text), {})
    expected = index.query(embed("garlic and tax invoices"), 3)
    assert [h.id for h in out.hits] == [h.id for h in expected]
    assert [h.score for h in out.hits] == pytest.approx([h.score for h in expected], abs=1e-5)


def test_min_score_drops_weak_hits(engine):
    out = run(query, {"text": "garlic basil", "min_score": 0.2})
    assert [h.id for h in out.hits] == ["cooking"]


def test_replace_keeps_one_copy_and_metadata(engine):
    out = run(
        index_document, {"id": "money", "text": "Garlic bread recipes", "metadata": {"lang": "en"}}
    )
    assert (out.replaced, out.documents) == (True, 3)
    hits = run(query, {"text": "garlic bread", "k": 1}).hits
    assert (hits[0].id, hits[0].metadata) == ("money", {"lang": "en"})


def test_remove_document(engine):
    first = run(remove_document, {"id": "cats"})
    again = run(remove_document, {"id": "cats"})
    assert (first.removed, first.documents) == (True, 2)
    assert (again.removed, again.documents) == (False, 2)
    assert sorted(h.id for h in run(query, {"text": "kitten", "k": 5}).hits) == ["cooking", "money"]


def test_documents_of_another_dimension_are_kept_apart(engine):
    run(index_document, {"id": "small", "text": "a kitten on the sofa", "dim": 32})
    small = run(query, {"text": "kitten", "dim": 32})
    assert [h.id for h in small.hits] == ["small"]
    assert small.documents == 1
    assert run(stats, {}).documents == 4


def test_stats(engine):
    out = run(stats, {})
    assert (out.documents, out.engine) == (3, engine)
    assert out.size_bytes > 0


def test_concurrent_writers_lose_no_document(engine):
    def add(n: int) -> None:
        run(index_document, {"id": f"doc-{n}", "text": f"document number {n}"})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(add, range(16)))
    assert run(stats, {}).documents == 19


@pytest.mark.parametrize(
    ("act", "data", "field"),
    [
        (index_document, {"id": "has space", "text": "x"}, "id"),
        (index_document, {"id": "a", "text": ""}, "text"),
        # no input names a file or a database
        (index_document, {"id": "a", "text": "x", "index_path": "/tmp/x.npz"}, "index_path"),
        (query, {"text": "x", "index_path": "/tmp/x.npz"}, "index_path"),
        (index_document, {"id": "a", "text": "x", "dim": 8}, "dim"),
        (
            index_document,
            {"id": "a", "text": "x", "metadata": {f"k{i}": "v" for i in range(33)}},
            "metadata",
        ),
        (query, {"text": "x", "k": 0}, "k"),
        (query, {"text": "x", "min_score": 1.5}, "min_score"),
        (embed_text, {"text": "x", "dim": 5000}, "dim"),
        (remove_document, {"id": "a", "force": True}, "force"),
    ],
)
def test_bad_input_names_the_field(act, data, field):
    with pytest.raises(InvalidInputError) as info:
        run(act, data)
    assert [e.loc for e in info.value.errors] == [field]
    assert f"{field}:" in str(info.value)


def test_call_action_through_an_in_memory_registry(engine):
    with use_registry(make_registry(query, stats)):
        out = call_action("search.stats", {})
    assert out.documents == 3


def test_actions_are_registered_as_entry_points():
    registry = Registry.from_entry_points()
    for name in ACTIONS:
        assert registry.info(name).distribution == "acme-search"
    assert registry.resolve("search.query") is query


def test_root_routing_puts_the_actions_on_a_shared_queue():
    config = load_config(Path(__file__).parent)
    assert config.route("search.query") == "media"


def test_top_k_breaks_ties_by_id_and_matches_a_full_sort():
    index = VectorIndex(dim=8)
    rng = np.random.default_rng(7)
    for n in range(50):
        vector = rng.normal(size=8).astype(np.float32)
        index.add(f"d{n:02d}", vector / np.linalg.norm(vector), {})
    for n in range(3):  # three identical documents
        index.add(f"same-{2 - n}", np.eye(8, dtype=np.float32)[0], {})
    probe = np.eye(8, dtype=np.float32)[0]
    full = sorted(zip(index.ids, index.vectors @ probe, strict=True), key=lambda p: (-p[1], p[0]))
    top = index.query(probe, 5)
    assert [h.id for h in top] == [i for i, _ in full[:5]]
    assert [h.id for h in top[:3]] == ["same-0", "same-1", "same-2"]
