from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from acme_search import ENV_VAR, IndexFileError, IndexPathError, VectorIndex, embed
from acme_search.actions import embed_text, index_document, query, remove_document, stats
from switchyard import HandlerError, InvalidInputError, Registry, call_action, load_config
from switchyard.testing import make_registry, run, use_registry

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


@pytest.fixture
def index_path(tmp_path):
    path = tmp_path / "idx" / "docs.npz"
    for doc_id, text in DOCS.items():
        run(index_document, {"id": doc_id, "text": text, "index_path": str(path)})
    return path


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


def test_query_ranks_the_relevant_document_first(index_path):
    out = run(query, {"text": "a kitten on the sofa", "k": 2, "index_path": str(index_path)})
    assert out.documents == 3
    assert next(h.id for h in out.hits) == "cats"
    assert len(out.hits) == 2
    assert out.hits[0].score > out.hits[1].score


def test_min_score_drops_weak_hits(index_path):
    out = run(query, {"text": "garlic basil", "min_score": 0.2, "index_path": str(index_path)})
    assert [h.id for h in out.hits] == ["cooking"]


def test_replace_keeps_one_copy_and_metadata(index_path):
    out = run(
        index_document,
        {
            "id": "money",
            "text": "Garlic bread recipes",
            "metadata": {"lang": "en"},
            "index_path": str(index_path),
        },
    )
    assert (out.replaced, out.created_index, out.documents) == (True, False, 3)
    hits = run(query, {"text": "garlic bread", "k": 1, "index_path": str(index_path)}).hits
    assert (hits[0].id, hits[0].metadata) == ("money", {"lang": "en"})


def test_remove_document_persists(index_path):
    first = run(remove_document, {"id": "cats", "index_path": str(index_path)})
    again = run(remove_document, {"id": "cats", "index_path": str(index_path)})
    assert (first.removed, first.documents) == (True, 2)
    assert (again.removed, again.documents) == (False, 2)
    reloaded = VectorIndex.load(index_path)
    assert sorted(reloaded.ids) == ["cooking", "money"]
    assert reloaded.vectors.shape == (2, 256)


def test_index_file_is_plain_npz(index_path):
    with np.load(index_path, allow_pickle=False) as data:
        assert sorted(data.files) == ["dim", "format", "ids", "metadata", "vectors"]
        assert data["vectors"].dtype == np.float32
    out = run(stats, {"index_path": str(index_path)})
    assert (out.documents, out.dim) == (3, 256)
    assert out.size_bytes == index_path.stat().st_size > 3 * 256 * 4


def test_index_path_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.npz"
    monkeypatch.setenv(ENV_VAR, str(path))
    created = run(index_document, {"id": "a", "text": "hello world", "dim": 32})
    assert created.created_index
    assert path.exists()
    assert run(query, {"text": "hello"}).hits[0].id == "a"


def test_no_index_path_says_what_to_do(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(HandlerError) as info:
        run(query, {"text": "hello"})
    assert isinstance(info.value.__cause__, IndexPathError)
    assert ENV_VAR in str(info.value.__cause__)


def test_missing_corrupt_and_mismatched_indexes_fail_clearly(tmp_path, index_path):
    with pytest.raises(HandlerError) as missing:
        run(query, {"text": "x", "index_path": str(tmp_path / "nope.npz")})
    assert "index a document first" in str(missing.value.__cause__)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(HandlerError) as corrupt:
        run(stats, {"index_path": str(bad)})
    assert isinstance(corrupt.value.__cause__, IndexFileError)
    with pytest.raises(HandlerError) as dim:
        run(index_document, {"id": "z", "text": "x", "dim": 64, "index_path": str(index_path)})
    assert "has dim 256, not 64" in str(dim.value.__cause__)


def test_concurrent_writers_lose_no_document(tmp_path):
    path = str(tmp_path / "busy.npz")

    def add(n: int) -> None:
        run(index_document, {"id": f"doc-{n}", "text": f"document number {n}", "index_path": path})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(add, range(16)))
    assert run(stats, {"index_path": path}).documents == 16


@pytest.mark.parametrize(
    ("act", "data", "field"),
    [
        (index_document, {"id": "has space", "text": "x"}, "id"),
        (index_document, {"id": "a", "text": ""}, "text"),
        (index_document, {"id": "a", "text": "x", "index_path": "/tmp/x.json"}, "index_path"),
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


def test_call_action_through_an_in_memory_registry(index_path):
    with use_registry(make_registry(query, stats)):
        out = call_action("search.stats", {"index_path": str(index_path)})
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
