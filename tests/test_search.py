from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection
from illustra.encoders import Encoder
from illustra.errors import BadInput, IndexMissing, ItemNotFound, ModelMismatch, NotEmbedded
from illustra.index import build_index, load_index
from illustra.search import SearchService
from illustra.search.filters import Filters

from .fakes import solid
from .searchkit import build_colour_collection


@pytest.fixture
def coll(tmp_path):
    c = build_colour_collection(tmp_path / "c", metadata_only=3)
    build_index(c, "fake")
    return Collection(tmp_path / "c")


def test_text_query_ranks_matching_colour_first(coll):
    resp = SearchService(coll).search_text("something red", k=6)
    assert [h.id.split("/")[0] for h in resp.results] == ["red"] * 6
    assert [h.rank for h in resp.results] == [1, 2, 3, 4, 5, 6]
    assert resp.results[0].score >= resp.results[-1].score
    assert resp.results[0].metadata["title"].startswith("A red plate")
    assert "image" not in resp.results[0].metadata


def test_image_query_and_like(coll, tmp_path):
    svc = SearchService(coll)
    p = tmp_path / "q.png"
    solid("blue", (64, 64)).save(p)
    assert svc.search_image(str(p), k=3).results[0].id.startswith("blue/")
    like = svc.search_like("green/00", k=5)
    ids = [h.id for h in like.results]
    assert "green/00" not in ids
    assert all(i.startswith("green/") for i in ids)


def test_filters_still_return_k_results(coll):
    svc = SearchService(coll)
    # Years run 1800..1847 in colour order; red is 1800-1805.
    resp = svc.search_text("red", k=5, filters=Filters(year_from=1830, year_to=1847))
    assert len(resp.results) == 5
    assert all(1830 <= h.metadata["year"] <= 1847 for h in resp.results)
    paris = svc.search_text("red", k=10, filters=Filters(fields={"place": "paris"}))
    assert len(paris.results) == 10 and all(h.metadata["place"] == "Paris" for h in paris.results)
    titled = svc.search_text("red", k=10, filters=Filters(title_contains="BLUE plate"))
    assert {h.id.split("/")[0] for h in titled.results} == {"blue"}
    assert len(titled.results) == 6
    none = svc.search_text("red", k=10, filters=Filters(year_from=1990))
    assert none.results == []


def test_unknown_filter_field_and_bad_paging(coll):
    svc = SearchService(coll)
    with pytest.raises(BadInput, match="cannot filter on 'colour'"):
        svc.search_text("red", filters=Filters(fields={"colour": "red"}))
    with pytest.raises(BadInput):
        svc.search_text("red", k=0)
    with pytest.raises(BadInput, match="empty"):
        svc.search_text("   ")
    with pytest.raises(ItemNotFound):
        svc.search_like("no/such/id")
    with pytest.raises(ItemNotFound, match="no image embedding"):
        svc.search_like("text-only/0")


def test_paging_is_consistent(coll):
    svc = SearchService(coll)
    full = [h.id for h in svc.search_text("yellow", k=20).results]
    page1 = svc.search_text("yellow", k=10)
    page2 = svc.search_text("yellow", k=10, offset=10)
    assert [h.id for h in page1.results + page2.results] == full
    assert page1.has_more and page2.results[0].rank == 11


def test_hnsw_matches_exact_on_clustered_data(coll):
    build_index(coll, "fake", "hnsw")
    idx = load_index(Collection(coll.root), "fake")
    assert idx.kind == "hnsw"
    svc = SearchService(Collection(coll.root))
    assert [h.id.split("/")[0] for h in svc.search_text("cyan", k=6).results] == ["cyan"] * 6


def test_ivfpq_index_searches(tmp_path):
    c = build_colour_collection(tmp_path / "c", n_per_colour=40)
    build_index(c, "fake", "ivfpq")
    svc = SearchService(Collection(c.root))
    assert [h.id.split("/")[0] for h in svc.search_text("purple", k=10).results] == ["purple"] * 10


def test_model_mismatch_refused(coll):
    class Other:
        name = "other-model"
        dim = 16
        image_side = 64

        def embed_images(self, images):
            return np.zeros((len(images), 16), np.float32)

        def embed_texts(self, texts):
            return np.zeros((len(texts), 16), np.float32)

    with pytest.raises(ModelMismatch):
        SearchService(coll, "other-model")
    with pytest.raises(ModelMismatch):
        SearchService(coll, encoder=Other())


def test_not_embedded_and_missing_index(tmp_path):
    c = Collection.create(tmp_path / "raw", [{"id": "a", "title": "x"}], source={"kind": "test"})
    with pytest.raises(NotEmbedded):
        SearchService(c)
    c2 = build_colour_collection(tmp_path / "noindex")
    with pytest.raises(IndexMissing, match="illustra index"):
        SearchService(c2).search_text("red")


def test_cli_end_to_end_json(coll):
    r = CliRunner().invoke(main, ["search", "--collection", str(coll.root), "red", "-k", "3", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [x["id"].split("/")[0] for x in doc["results"]] == ["red"] * 3
    assert set(doc["results"][0]) >= {"id", "score", "metadata"}
    table = CliRunner().invoke(main, ["search", "--collection", str(coll.root), "--like", "red/01", "-k", "2"])
    assert table.exit_code == 0 and "red/" in table.output
    info = CliRunner().invoke(main, ["info", "--collection", str(coll.root), "--json"])
    assert json.loads(info.stdout)["embeddings"]["fake"]["dim"] == 16


def test_cli_errors_are_one_line(tmp_path, coll):
    r = CliRunner().invoke(main, ["search", "--collection", str(tmp_path / "nope"), "red"])
    assert r.exit_code == 3
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error:")
    r = CliRunner().invoke(main, ["search", "--collection", str(coll.root), "red", "--model", "lite"])
    assert r.exit_code == 5 and "embedded with fake" in r.stderr
    r = CliRunner().invoke(main, ["search", "--collection", str(coll.root)])
    assert r.exit_code == 2 and "exactly one" in r.stderr


class BrightnessEncoder(Encoder):
    """A picture-only companion space for the fake model: pictures by brightness alone (red and blue
    plates are equally bright here, so they are neighbours, unlike in the fake model's colour space)."""

    name = "fake-visual"
    dim = 2
    image_side = 64

    def embed_images(self, images):
        out = []
        for im in images:
            b = float(np.asarray(im.convert("RGB"), np.float32).mean()) / 255.0
            out.append([np.cos(b * np.pi / 2), np.sin(b * np.pi / 2)])
        return np.asarray(out, np.float32)

    supports_text = False
    similarity_for = "fake"


def test_picture_queries_use_the_companion_space(tmp_path):
    from illustra.embed import embed_collection
    from illustra.encoders import register_encoder

    register_encoder("fake-visual", BrightnessEncoder)
    root = tmp_path / "c"
    c = build_colour_collection(root)
    build_index(c, "fake")
    plain = SearchService(Collection(root)).search_like("red/00", k=10)
    assert [h.id.split("/")[0] for h in plain.results[:5]] == ["red"] * 5  # colour space: reds first
    # Embedded but not yet indexed: the model's own space still answers.
    embed_collection(Collection(root), BrightnessEncoder(), progress=False)
    svc = SearchService(Collection(root))
    assert svc.model == "fake"  # a picture-only space never becomes the default model
    assert "space" not in svc.search_like("red/00", k=3).results[0].explain
    build_index(Collection(root), "fake-visual")
    svc = SearchService(Collection(root))
    like = svc.search_like("red/00", k=10)
    assert all(h.explain["space"] == "fake-visual" for h in like.results)
    assert "blue" in {h.id.split("/")[0] for h in like.results}  # as bright as red
    assert "red/00" not in [h.id for h in like.results]
    by_picture = svc.search_image(solid("blue", (64, 64)), k=12)
    assert {h.id.split("/")[0] for h in by_picture.results} >= {"blue", "red"}
    # Text still goes to the model's own space.
    text = svc.search_text("yellow", k=6)
    assert [h.id.split("/")[0] for h in text.results] == ["yellow"] * 6
    assert "space" not in text.results[0].explain
