"""Permalinks: every result set (text, picture, more like this, facet, marked examples) has a link
that records the query, mode, filters, facet examples, model and index build; opening it shows the
same results, and after the index is rebuilt (or with another model) the page says so."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from starlette.testclient import TestClient

from illustra.api import create_app
from illustra.collection import Collection
from illustra.errors import BadInput
from illustra.facets import FacetDefinition, FacetStore
from illustra.index import build_index
from illustra.search.permalink import decode_vector, encode_vector

from .facetkit import build_facet_collection
from .fakes import solid


@pytest.fixture
def coll_root(tmp_path: Path) -> Path:
    from illustra.encoders import register_encoder

    from .fakes import FakeEncoder

    register_encoder("fake", FakeEncoder)
    return build_facet_collection(tmp_path / "coll").root


def page_ids(html: str) -> list[str]:
    """The item ids of the result cards, in order."""
    return re.findall(r'data-marks data-id="([^"]+)"', html)


def params_of(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


def png(colour: str) -> bytes:
    buf = io.BytesIO()
    solid(colour, (60, 60)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_vector_survives_a_link():
    v = np.random.default_rng(1).standard_normal(1152).astype(np.float32)
    v /= np.linalg.norm(v)
    text = encode_vector(v)
    assert text is not None and len(text) < 6000
    back = decode_vector(text, 1152)
    assert float(back @ v) > 0.9999
    with pytest.raises(BadInput, match="1152-dimensional"):
        decode_vector(text, 512)
    with pytest.raises(BadInput, match="damaged"):
        decode_vector("1.@@@", 1152)
    assert encode_vector(np.ones(5000, np.float32)) is None  # too long for a link


def test_every_result_set_has_a_permalink_that_opens_the_same_results(coll_root):
    FacetStore(coll_root).create("reds", FacetDefinition.of(["red/00", "red/01"], ["blue/00"]))
    with TestClient(create_app(coll_root), raise_server_exceptions=False) as c:
        text = c.get("/api/search", params={"q": "green", "mode": "visual", "k": 24, "year_from": 1810,
                                            "place": "London"}).json()
        link = text["permalink"]
        p = params_of(link)
        assert p["q"] == ["green"] and p["mode"] == ["visual"] and p["year_from"] == ["1810"]
        assert p["place"] == ["London"] and p["model"] == ["fake"] and p["built"] == [text["index_built"]]
        assert text["index_built"] == Collection(coll_root).manifest["text_index"]["built"] or text["index_built"]

        like = c.get("/api/items/blue/02/similar", params={"k": 24}).json()
        image = c.post("/api/search/image", files={"image": ("x.png", png("yellow"), "image/png")},
                       data={"k": "24"}).json()
        facet = c.get("/api/facets/reds/search", params={"k": 24, "year_to": 1840}).json()
        assert params_of(like["permalink"])["like"] == ["blue/02"]
        assert "vec" in params_of(image["permalink"])
        assert "fdef" in params_of(facet["permalink"]) and params_of(facet["permalink"])["year_to"] == ["1840"]

        for resp in (text, like, image, facet):
            page = c.get(resp["permalink"])
            assert page.status_code == 200, page.text
            assert page_ids(page.text) == [h["id"] for h in resp["results"]], resp["kind"]
            assert "rebuilt" not in page.text
            # The page shows the permalink and the exports of the same result set.
            assert 'data-permalink' in page.text and "/api/export?" in page.text

        # A facet's link rebuilds it from its examples, even where it is not saved.
        FacetStore(coll_root).delete("reds")
        again = c.get(facet["permalink"])
        assert page_ids(again.text) == [h["id"] for h in facet["results"]]
        assert "Ranked by the facet" in again.text and "reds" in again.text
        # And exports take the same parameters.
        export = c.get("/api/export" + facet["permalink"].removeprefix("/search") + "&format=csv&k=3")
        assert export.status_code == 200 and export.text.count("\n") == 4


def test_opening_a_permalink_after_a_rebuild_says_so(coll_root):
    with TestClient(create_app(coll_root)) as c:
        link = c.get("/api/search", params={"q": "red", "mode": "visual"}).json()["permalink"]
        assert "rebuilt" not in c.get(link).text
    time.sleep(1.1)  # build times are kept to the second
    build_index(Collection(coll_root), "fake")
    with TestClient(create_app(coll_root)) as c:
        page = c.get(link)
        assert page.status_code == 200
        assert "the index was rebuilt since this link was made" in page.text
        assert page_ids(page.text)  # the results are still shown
        other = c.get(link.replace("model=fake", "model=lite"))
        assert "this link was made with the model" in other.text


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("fdef=1.garbage", "damaged"),
        ("vec=1.AAAAAA", "2-dimensional"),
        ("ex=0.e30&vec=1.AAAAAA", "one result set"),
        ("tw=0.5&q=red", "text weight"),
        ("ex=0.eyJwIjpbInJlZC8wMCJdfQ&tw=7", "text weight"),
        ("facet=nope", "no facet named"),
    ],
)
def test_a_damaged_link_is_one_clear_message_on_the_page(coll_root, query, words):
    with TestClient(create_app(coll_root), raise_server_exceptions=False) as c:
        r = c.get("/search?" + query)
        assert r.status_code in (404, 422), r.text
        assert words in r.text.lower()


def test_the_quick_form_from_a_link(coll_root):
    ex = FacetDefinition.of(["red/00"], ["blue/00"]).encode()
    with TestClient(create_app(coll_root)) as c:
        page = c.get("/search", params={"ex": ex, "q": "green", "tw": "1"})
        assert page.status_code == 200
        ids = page_ids(page.text)
        assert ids and all(i.startswith("green/") for i in ids[:6])
        assert "Pictures like your marked examples" in page.text
        # A text query typed over a facet search starts a plain text search.
        plain = c.get("/search", params={"fdef": ex, "q": "yellow", "mode": "visual"})
        assert page_ids(plain.text)[0].startswith("yellow/") and "Ranked by the facet" not in plain.text
