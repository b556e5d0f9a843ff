"""Facets by example against a real collection (fake encoder, real FAISS index, real SQLite):
definitions and their links, training and ranking within filters, combining, editing, the quick
form, and every kind of bad input leaving the store as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from illustra.errors import BadInput, ItemNotFound
from illustra.facets import FacetDefinition, FacetExists, FacetNotFound, FacetSearch, FacetStore, check_name
from illustra.facets.definition import DefinitionTooLong
from illustra.facets.model import score_all, top, train
from illustra.facets.search import Facet, NoKnownPositive
from illustra.search import Filters, SearchService
from illustra.search.limits import MAX_EXAMPLES

from .facetkit import build_facet_collection, colour_of


@pytest.fixture(scope="module")
def coll_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from illustra.encoders import register_encoder

    from .fakes import FakeEncoder

    register_encoder("fake", FakeEncoder)
    return build_facet_collection(tmp_path_factory.mktemp("facets") / "coll").root


@pytest.fixture
def fs(coll_root: Path) -> FacetSearch:
    out = FacetSearch(SearchService(coll_root))
    for f in out.store.list():
        out.store.delete(f.name)
    return out


def stored(fs: FacetSearch) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(f.name, f.definition.positives, f.definition.negatives) for f in fs.store.list()]


# -- definitions -------------------------------------------------------------------------------
def test_a_definition_travels_in_a_link_and_comes_back_the_same():
    d = FacetDefinition.of(["red/00", "ü/ß/漢字", "a,b"], ["blue/01"])
    text = d.encode("ships")
    assert text.startswith("1.") and len(text) < 200
    assert FacetDefinition.decode(text) == (d, "ships")
    # The page's script writes plain JSON ("0."); it reads back the same.
    import base64
    import json

    plain = "0." + base64.urlsafe_b64encode(json.dumps({"p": ["red/00"], "n": []}).encode()).decode().rstrip("=")
    assert FacetDefinition.decode(plain) == (FacetDefinition(("red/00",)), None)
    assert d.key() == FacetDefinition.of(["a,b", "red/00", "ü/ß/漢字"], ["blue/01"]).key()


@pytest.mark.parametrize("bad", ["", "1.", "2.abc", "1.!!!", "1.eJzLSM3JyVcozy_KSQEAGgQEXQ", "0.W10"])
def test_a_damaged_definition_is_one_clear_message(bad):
    with pytest.raises(BadInput, match="damaged|not|list"):
        FacetDefinition.decode(bad)


def test_a_definition_that_inflates_without_end_is_refused():
    import base64
    import zlib

    bomb = "1." + base64.urlsafe_b64encode(zlib.compress(b"[" * 3_000_000, 9)).decode().rstrip("=")
    assert len(bomb) < 6000
    with pytest.raises(BadInput, match="damaged"):
        FacetDefinition.decode(bomb)


def test_too_many_examples_for_a_link_say_so():
    import hashlib

    d = FacetDefinition.of([hashlib.sha256(str(i).encode()).hexdigest() for i in range(900)])
    with pytest.raises(DefinitionTooLong, match="characters in a link"):
        d.encode()


@pytest.mark.parametrize("name", ["ships", "A-1_b", "x" * 64])
def test_plain_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "two words", "-x", "a/b", "é", "x" * 65, "a.b"])
def test_names_that_are_not_plain_are_refused(name):
    with pytest.raises(BadInput):
        check_name(name)


# -- the model ---------------------------------------------------------------------------------
def test_training_is_deterministic_and_ranks_the_positives_first():
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((2000, 32)).astype(np.float32)
    vecs[:50] += 3.0  # a cluster
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    a = train(vecs, np.arange(5), np.array([1500]), seed=7)
    b = train(vecs, np.arange(5), np.array([1500]), seed=7)
    assert np.array_equal(a.weights, b.weights) and a.bias == b.bias
    assert a.positives == 5 and a.negatives == 1 and a.random_negatives == 1000
    scores, pos = top(score_all([a], vecs, None), 50)
    assert len(set(pos.tolist()) & set(range(50))) >= 45  # the cluster, found from 5 of its members
    # Within a mask only allowed positions come back, best first.
    allowed = np.zeros(len(vecs), bool)
    allowed[25:1000] = True
    s2, p2 = top(score_all([a], vecs, allowed), 10)
    assert allowed[p2].all() and np.all(np.diff(s2) <= 0)
    # Scoring only the allowed vectors (a sparse filter) or whole chunks (a wide one) agrees with
    # scoring everything.
    full = score_all([a], vecs, None)
    for share in (0.1, 0.9):
        mask = np.random.default_rng(1).random(len(vecs)) < share
        part = score_all([a], vecs, mask)
        assert np.allclose(part[mask], full[mask]) and np.isneginf(part[~mask]).all()


# -- saved facets ------------------------------------------------------------------------------
def test_create_skips_unknown_ids_and_lists_them(fs):
    saved, skipped = fs.create("reds", FacetDefinition.of(["red/00", "red/01", "no/such"], ["blue/00", "text-only/0"]))
    assert saved.definition == FacetDefinition(("red/00", "red/01"), ("blue/00",))
    assert [(s.id, s.reason) for s in skipped] == [("no/such", "no such item"), ("text-only/0", "no picture")]
    assert stored(fs) == [("reds", ("red/00", "red/01"), ("blue/00",))]


@pytest.mark.parametrize(
    ("name", "pos", "neg", "error", "words"),
    [
        ("bad name", ["red/00"], [], BadInput, "not a plain name"),
        ("greens", [], ["red/00"], BadInput, "no positive example"),
        ("greens", ["no/such", "text-only/1"], [], NoKnownPositive, "none of the positive examples"),
        ("greens", ["red/00"], ["red/00"], BadInput, "both"),
        ("greens", [f"x{i}" for i in range(MAX_EXAMPLES)], ["red/00"], BadInput, "at most 1,000"),
        ("REDS", ["green/00"], [], FacetExists, "exists already"),
    ],
)
def test_bad_facets_are_one_message_and_change_nothing(fs, name, pos, neg, error, words):
    fs.create("reds", FacetDefinition.of(["red/00"]))
    before = stored(fs)
    with pytest.raises(error, match=words):
        fs.create(name, FacetDefinition.of(pos, neg, check=False))
    assert stored(fs) == before


def test_change_adds_and_removes_examples(fs):
    fs.create("reds", FacetDefinition.of(["red/00", "red/01"], ["blue/00"]))
    saved, skipped = fs.change("reds", add_positive=["red/02", "nope"], add_negative=["red/01"], remove=["blue/00"])
    assert saved.definition == FacetDefinition(("red/00", "red/02"), ("red/01",))
    assert [s.id for s in skipped] == ["nope"]
    before = stored(fs)
    with pytest.raises(BadInput, match="no positive"):
        fs.change("reds", remove=["red/00", "red/02"])
    with pytest.raises(BadInput, match="at most"):
        fs.change("reds", add_negative=[f"x{i}" for i in range(MAX_EXAMPLES)])
    with pytest.raises(FacetNotFound):
        fs.change("blues", add_positive=["blue/00"])
    assert stored(fs) == before


def test_reading_never_creates_the_store(tmp_path):
    (tmp_path / "c").mkdir()
    store = FacetStore(tmp_path / "c")
    assert store.list() == []
    with pytest.raises(FacetNotFound):
        store.get("x")
    with pytest.raises(FacetNotFound):
        store.delete("x")
    assert not store.path.exists()


def test_the_store_is_plain_sqlite_in_the_collection(fs, coll_root):
    fs.create("reds", FacetDefinition.of(["red/00"]))
    with sqlite3.connect(coll_root / "facets.sqlite") as conn:
        assert conn.execute("SELECT name FROM facets").fetchall() == [("reds",)]


# -- searching ---------------------------------------------------------------------------------
def test_a_facet_ranks_its_kind_first_within_filters_and_pages(fs):
    facet = Facet("reds", FacetDefinition.of(["red/00", "red/01"], ["blue/00"]))
    resp = fs.search([facet], k=6)
    assert resp.kind == "facet" and resp.query == "reds" and resp.has_more
    assert [colour_of(h.id) for h in resp.results] == ["red"] * 6
    assert all(0 < h.score <= 1 for h in resp.results)
    assert resp.results[0].explain["facets"]["reds"] == pytest.approx(resp.results[0].score, abs=1e-6)
    assert resp.source and resp.source[0][0] == "fdef"
    # Paging: pages join into the ranking of one long page.
    whole = [h.id for h in fs.search([facet], k=30).results]
    paged = [h.id for off in (0, 10, 20) for h in fs.search([facet], k=10, offset=off).results]
    assert paged == whole
    # Filters: the same ones as a search, k results still come back.
    paris = fs.search([facet], k=5, filters=Filters(fields={"place": "Paris"}))
    assert len(paris.results) == 5 and {h.metadata["place"] for h in paris.results} == {"Paris"}
    years = fs.search([facet], k=50, filters=Filters(year_from=1800, year_to=1805))
    assert {h.metadata["year"] for h in years.results} <= set(range(1800, 1806)) and len(years.results) == 6
    with pytest.raises(BadInput):
        fs.search([facet], k=0)


def test_facets_combine_by_multiplying_probabilities(fs):
    warm = Facet("warm", FacetDefinition.of(["red/00", "yellow/00"]))
    reddish = Facet("reddish", FacetDefinition.of(["red/01", "purple/00"]))
    both = fs.search([warm, reddish], k=6)
    assert both.query == "warm × reddish"
    assert [colour_of(h.id) for h in both.results] == ["red"] * 6
    h = both.results[0]
    assert h.score == pytest.approx(h.explain["facets"]["warm"] * h.explain["facets"]["reddish"], rel=1e-4)
    with pytest.raises(BadInput, match="at most"):
        fs.search([warm] * 9, k=5)


def test_the_same_examples_give_the_same_ranking_anywhere(coll_root, fs):
    facet = Facet("x", FacetDefinition.of(["green/00", "cyan/01"], ["white/00"]))
    a = fs.search([facet], k=20)
    b = FacetSearch(SearchService(coll_root)).search([facet], k=20)
    assert [(h.id, round(h.score, 6)) for h in a.results] == [(h.id, round(h.score, 6)) for h in b.results]


def test_a_saved_facet_whose_items_went_away_says_so(fs):
    facet = Facet("reds", FacetDefinition(("red/00", "gone/1"), ("gone/2",)), saved=True)
    resp = fs.search([facet], k=3)
    assert [colour_of(h.id) for h in resp.results] == ["red"] * 3
    assert any("gone/1" in n and "gone/2" in n for n in resp.notices)
    with pytest.raises(ItemNotFound, match="none of the positive"):
        fs.search([Facet("lost", FacetDefinition(("gone/1",)))], k=3)


def test_the_quick_form_blends_examples_and_text(fs):
    ex = FacetDefinition.of(["red/00"], ["blue/00"])
    by_examples = fs.quick(ex, k=5)
    assert by_examples.kind == "examples" and [colour_of(h.id) for h in by_examples.results] == ["red"] * 5
    assert "red/00" not in [h.id for h in fs.quick(ex, k=40).results]  # the examples are left out
    text_only = fs.quick(ex, "green", text_weight=1.0, k=5)
    assert [colour_of(h.id) for h in text_only.results] == ["green"] * 5
    examples_only = fs.quick(ex, "green", text_weight=0.0, k=5)
    assert [colour_of(h.id) for h in examples_only.results] == ["red"] * 5
    assert dict(text_only.source or [])["tw"] == "1"
    with pytest.raises(BadInput, match="text weight"):
        fs.quick(ex, "green", text_weight=1.5)
    with pytest.raises(BadInput, match="no positive"):
        fs.quick(FacetDefinition.of([], ["red/00"]))
