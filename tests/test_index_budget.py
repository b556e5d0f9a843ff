"""The vector index follows a memory budget: quantised kinds, exact re-ranking, exact-k filters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from illustra import index as index_mod
from illustra.cli import main
from illustra.collection import Collection
from illustra.embedding_store import EmbeddingStore
from illustra.errors import BadInput
from illustra.index import build_index, estimate_bytes, index_dir, load_index, plan_index
from illustra.settings import BadSetting, Settings, parse_size
from illustra.vector_backend import FaissBackend

MODEL = "vec"


def clustered(n: int, d: int, centres: int = 40, seed: int = 0, noise: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + noise * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vector_collection(root, vecs: np.ndarray) -> Collection:
    n, d = vecs.shape
    rows = ({"id": f"v/{i:05d}", "title": f"item {i}", "year": 1800 + i % 100} for i in range(n))
    coll = Collection.create(root, rows, source={"kind": "test"})
    store = EmbeddingStore(coll, MODEL)
    store.write_chunk(0, n, np.arange(n), vecs)
    store.consolidate(d)
    return Collection(root)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    vecs = clustered(6000, 64)
    coll = vector_collection(tmp_path_factory.mktemp("budget") / "c", vecs)
    queries = clustered(6040, 64)[6000:]  # same centres, new points
    return coll, vecs, queries


def exact_top(vecs: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> set[int]:
    s = vecs @ q
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    return set(np.argsort(-s, kind="stable")[:k].tolist())


def test_kind_follows_the_memory_budget():
    n, d = 1_080_000, 1152
    assert plan_index(n, d, parse_size("8GB")).kind == "hnsw"
    roomy = plan_index(n, d, parse_size("4GB"))
    assert (roomy.kind, roomy.params["qtype"], roomy.fits) == ("ivfsq", "SQ8", True)
    assert roomy.estimated_bytes < 4e9 < estimate_bytes("hnsw", n, d, {"M": 32})
    half = plan_index(n, d, parse_size("1GB"))
    assert (half.kind, half.params["qtype"]) == ("ivfsq", "SQ4")
    tight = plan_index(n, d, parse_size("256MB"))
    assert tight.kind == "ivfpq" and tight.fits and tight.estimated_bytes <= 256e6
    tiny = plan_index(n, d, 1000)
    assert tiny.kind == "ivfpq" and not tiny.fits
    # Small collections stay exact while flat fits; a kind asked for is kept whatever the budget.
    assert plan_index(3000, 64, parse_size("1GB")).kind == "flat"
    assert plan_index(3000, 64, 1000, kind="hnsw").kind == "hnsw"


def test_tiny_budget_builds_a_quantised_index_and_records_it(data):
    coll, vecs, _ = data
    info = build_index(coll, MODEL, memory_budget="1KB")
    assert info["kind"] == "ivfpq" and info["fits_budget"] is False
    meta = json.loads((index_dir(coll, MODEL) / "index.json").read_text())
    assert meta["kind"] == "ivfpq" and meta["memory_budget_bytes"] == 1000 and meta["memory_budget"] == "1KB"
    assert meta["params"]["m"] >= 1 and meta["params"]["nprobe"] >= 1
    assert meta["estimated_bytes"] > 0 and meta["measured_bytes"] >= meta["index_file_bytes"] > 0
    # The index holds codes, not the float32 vectors.
    assert meta["index_file_bytes"] < vecs.nbytes / 2
    mid = build_index(coll, MODEL, memory_budget=700_000)
    assert (mid["kind"], mid["params"]["qtype"], mid["fits_budget"]) == ("ivfsq", "SQ8", True)
    assert mid["estimated_bytes"] <= 700_000


@pytest.mark.parametrize("kind", ["ivfsq", "ivfpq", "hnsw"])
def test_reranked_scores_are_exact_cosines_and_recall_is_high(data, kind):
    coll, vecs, queries = data
    build_index(coll, MODEL, kind)
    idx = load_index(Collection(coll.root), MODEL)
    assert idx.kind == kind
    hits = 0
    for q in queries:
        scores, pos = idx.search(q, 10)
        assert len(pos) == 10
        np.testing.assert_allclose(scores, vecs[pos] @ q, rtol=0, atol=1e-5)
        assert np.all(np.diff(scores) <= 0)
        hits += len(set(pos.tolist()) & exact_top(vecs, q, 10))
    assert hits / (10 * len(queries)) >= 0.95


@pytest.mark.parametrize("kind", ["ivfsq", "ivfpq", "hnsw"])
def test_filtered_search_returns_k_results(data, kind, monkeypatch):
    coll, vecs, queries = data
    build_index(coll, MODEL, kind)
    idx = load_index(Collection(coll.root), MODEL)
    rng = np.random.default_rng(3)
    # Through the index itself (not the small-subset exact path), from broad to very selective.
    monkeypatch.setattr(index_mod, "SUBSET_EXACT_MAX", 0)
    for share in (0.5, 0.05, 0.004):
        allowed = rng.random(len(vecs)) < share
        allowed[rng.integers(0, len(vecs), 12)] = True
        hits = 0
        for q in queries[:15]:
            scores, pos = idx.search(q, 10, allowed)
            assert len(pos) == 10 and allowed[pos].all()
            np.testing.assert_allclose(scores, vecs[pos] @ q, rtol=0, atol=1e-5)
            hits += len(set(pos.tolist()) & exact_top(vecs, q, 10, allowed))
        assert hits / 150 >= 0.9, share
    few = np.zeros(len(vecs), bool)
    few[[5, 900, 4321]] = True
    assert sorted(idx.search(queries[0], 10, few)[1].tolist()) == [5, 900, 4321]


def test_bad_memory_budget_is_a_one_line_error(data, tmp_path):
    coll, _, _ = data
    r = CliRunner().invoke(main, ["index", "--collection", str(coll.root), "--memory-budget", "lots"])
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0 and "memory size such as 4GB" in r.stderr
    with pytest.raises(BadInput):
        parse_size("4 parsecs")
    with pytest.raises(BadSetting, match="ILLUSTRA_INDEX_MEMORY_BUDGET"):
        Settings.load(environ={"ILLUSTRA_INDEX_MEMORY_BUDGET": "-2GB"})
    assert Settings.load(environ={"ILLUSTRA_INDEX_MEMORY_BUDGET": "2GiB"}).index_memory_budget == 2 * 2**30


def test_cli_memory_budget_picks_the_kind(data):
    coll, _, _ = data
    r = CliRunner().invoke(main, ["index", "--collection", str(coll.root), "--memory-budget", "300KB"])
    assert r.exit_code == 0, r.output
    meta = json.loads((index_dir(coll, MODEL) / "index.json").read_text())
    assert meta["kind"] in ("ivfsq", "ivfpq") and meta["memory_budget_bytes"] == 300_000
    r = CliRunner().invoke(main, ["index", "--collection", str(coll.root), "--kind", "flat"])
    assert r.exit_code == 0, r.output
    assert json.loads((index_dir(coll, MODEL) / "index.json").read_text())["kind"] == "flat"


def exact_ranked(vecs: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray) -> list[int]:
    s = np.where(allowed, vecs @ q, -np.inf)
    return np.lexsort((np.arange(len(s)), -s))[:k].tolist()


def spy_postfilter(monkeypatch) -> list[bool]:
    """Record whether each post-filtered search found enough allowed candidates."""
    calls: list[bool] = []
    original = index_mod.VectorIndex._postfiltered

    def spy(self, *args, **kwargs):
        got = original(self, *args, **kwargs)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(index_mod.VectorIndex, "_postfiltered", spy)
    return calls


def test_permissive_filter_is_post_filtered_and_exact(tmp_path, monkeypatch):
    # Tight clusters: a query's filtered neighbours lie in the few lists nearest to it.
    vecs = clustered(6000, 64, centres=60, noise=0.15)
    queries = clustered(6030, 64, centres=60, noise=0.15)[6000:]
    coll = vector_collection(tmp_path / "c", vecs)
    build_index(coll, MODEL, "ivfsq")
    idx = load_index(Collection(coll.root), MODEL)
    monkeypatch.setattr(index_mod, "SUBSET_EXACT_MAX", 0)
    calls = spy_postfilter(monkeypatch)
    allowed = np.random.default_rng(5).random(len(vecs)) < 0.8
    for q in queries:
        scores, pos = idx.search(q, 10, allowed)
        assert pos.tolist() == exact_ranked(vecs, q, 10, allowed)
        np.testing.assert_allclose(scores, vecs[pos] @ q, rtol=0, atol=1e-5)
    # Every query was answered by the unfiltered search plus the row mask.
    assert calls and all(calls) and len(calls) == len(queries)


def test_filter_rare_near_the_query_falls_back_and_returns_k(tmp_path, monkeypatch):
    vecs = clustered(6000, 64, centres=60, noise=0.15)
    coll = vector_collection(tmp_path / "c", vecs)
    build_index(coll, MODEL, "ivfsq")
    idx = load_index(Collection(coll.root), MODEL)
    monkeypatch.setattr(index_mod, "SUBSET_EXACT_MAX", 0)
    calls = spy_postfilter(monkeypatch)
    q = vecs[0]
    # Most items are allowed, but none of the query's 800 nearest: the unfiltered candidates are
    # all masked out, so the search must widen through the filter and still return k.
    near = np.argsort(-(vecs @ q))[:800]
    allowed = np.ones(len(vecs), bool)
    allowed[near] = False
    scores, pos = idx.search(q, 10, allowed)
    assert calls == [False]
    assert pos.tolist() == exact_ranked(vecs, q, 10, allowed)
    # And a filter that keeps only a handful of items, each far from the query.
    few = np.zeros(len(vecs), bool)
    few[near[-1:]] = True
    few[np.argsort(vecs @ q)[:20]] = True
    assert sorted(idx.search(q, 10, few)[1].tolist()) == sorted(exact_ranked(vecs, q, 10, few))


def test_mapped_vector_pages_are_released_now_and_then_without_changing_results(data, monkeypatch) -> None:
    coll, vecs, queries = data
    build_index(coll, MODEL, kind="ivfsq")
    idx = load_index(coll, MODEL)
    before = [idx.search(q, 10)[1].tolist() for q in queries[:6]]
    released: list[bool] = []
    monkeypatch.setattr(index_mod, "RELEASE_EVERY", 2)
    real = index_mod.release_pages
    monkeypatch.setattr(index_mod, "release_pages", lambda v: released.append(real(v)) or True)
    after = [idx.search(q, 10)[1].tolist() for q in queries[:6]]
    assert after == before
    assert released == [True, True, True]  # the vectors are a read-only mapping: unmapped each time
    assert not real(np.zeros((3, 4), np.float32))  # an array in memory has nothing to release


def test_hnsw_keeps_recall_under_mid_share_filters(tmp_path, monkeypatch):
    """A graph walk through a filter keeping 10-45 % of the items still finds the allowed nearest,
    on many small clusters (as book illustrations are: few neighbours each, most filtered out)."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((1500, 128)).astype(np.float32)
    bases = (rng.standard_normal((1500, 16, 128)) * 0.35).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        a = rng.integers(0, len(centres), m)
        x = centres[a] + (rng.standard_normal((m, 1, 16)).astype(np.float32) @ bases[a])[:, 0, :]
        x += 0.15 * rng.standard_normal(x.shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    vecs, queries = draw(20000), draw(40)
    coll = vector_collection(tmp_path / "c", vecs)
    build_index(coll, MODEL, "hnsw")
    idx = load_index(Collection(coll.root), MODEL)
    monkeypatch.setattr(index_mod, "SUBSET_EXACT_MAX", 0)
    for share in (0.1, 0.2, 0.45):
        allowed = rng.random(len(vecs)) < share
        hits = 0
        for q in queries:
            _, pos = idx.search(q, 10, allowed)
            assert len(pos) == 10 and allowed[pos].all()
            hits += len(set(pos.tolist()) & exact_top(vecs, q, 10, allowed))
        assert hits / (10 * len(queries)) >= 0.99, share


def _mapped_kb(path: str) -> int:
    kb, current = 0, ""
    for line in Path("/proc/self/smaps").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and not line[0].isupper():
            current = parts[-1] if len(parts) >= 6 else ""
        elif line.startswith("Rss:") and current == path:
            kb += int(parts[1])
    return kb


def test_re_ranking_reads_vectors_without_mapping_them(data) -> None:
    """Re-ranked candidates are read from the file, so a server's memory does not grow with the
    pages around every vector it ever re-ranked."""
    coll, vecs, queries = data
    build_index(coll, MODEL, kind="ivfsq")
    idx = load_index(Collection(coll.root), MODEL)
    path = str(Path(idx.vectors.filename).resolve())
    for q in queries:
        scores, pos = idx.search(q, 10)
        np.testing.assert_allclose(scores, vecs[pos] @ q, rtol=0, atol=1e-5)
    assert _mapped_kb(path) == 0
    got = FaissBackend.wrap(idx).vectors_of([int(idx.rows[5]), int(idx.rows[2])])
    np.testing.assert_array_equal(got[int(idx.rows[2])], vecs[2])
    assert _mapped_kb(path) == 0
