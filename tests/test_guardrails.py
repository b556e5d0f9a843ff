"""Guardrails: sensitive terms, language notices, the face guard and hidden items, through the
search service and the REST API."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from starlette.testclient import TestClient

from illustra.api import create_app
from illustra.collection import Collection
from illustra.errors import BadInput, Refused
from illustra.guardrails import FACE_REFUSAL, Guardrails
from illustra.guardrails import terms as gterms
from illustra.guardrails.faces import face_dominates, largest_face
from illustra.guardrails.feedback import FeedbackStore
from illustra.guardrails.language import guess_is_english
from illustra.index import build_index
from illustra.search import SearchService

from .fakes import solid
from .searchkit import build_colour_collection


def face_photo() -> Image.Image:
    """A public-domain US Navy portrait photograph (Grace Hopper) that matplotlib ships."""
    from matplotlib import cbook

    return Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")


def slur() -> str:
    """A term from the shipped 'slur' category (read from the data, not spelled out here)."""
    return str(gterms.shipped()["terms"]["slur"][0])


@pytest.fixture
def coll(tmp_path: Path) -> Collection:
    c = build_colour_collection(tmp_path / "c")
    build_index(c, "fake")
    return Collection(tmp_path / "c")


# -- terms ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("Savages dancing", "dehumanising"),
        ("a coloured man", "historical_group_label"),
        ("half-caste", "historical_group_label"),
        ("halfcastes", "historical_group_label"),
        ("negroes in a field", "historical_group_label"),
        ("two thieves", "criminalising"),
        ("Native women", "historical_group_label"),
        ("a Chinese family", "identity_as_category"),
        ("Bushmen", "historical_group_label"),
        ("a crippled boy", "disability"),
    ],
)
def test_sensitive_terms_match_whole_words_and_plurals(query, category):
    found = gterms.build().match(query)
    assert category in {m.term.category for m in found}


@pytest.mark.parametrize(
    "query",
    [
        "a black and white portrait",
        "coloured plates of birds",
        "native plants",
        "a black cat",
        "jewels",
        "Maine coon cat",
        "a white horse",
        "primitive tools",
    ],
)
def test_everyday_queries_get_no_content_note(query):
    assert gterms.build().match(query) == []


def test_notes_blocks_and_guardrails_off(coll):
    g = Guardrails(coll.root)
    notes = g.check_text("savages on a red beach")
    assert len(notes) == 1 and notes[0].startswith("Content note: 'savage' has long been used to dehumanise")
    with pytest.raises(Refused, match="blocks") as err:
        g.check_text(f"a {slur()} in a hat")
    assert slur() not in str(err.value)  # the refusal does not repeat the slur
    off = Guardrails(coll.root, enabled=False)
    assert off.check_text("savages") == [] and off.check_text(slur()) == []


def test_owner_overrides_in_guardrails_json(coll):
    g = Guardrails(coll.root)
    (coll.root / "guardrails.json").write_text(
        json.dumps(
            {
                "terms": [
                    {"term": "savage", "action": "block"},
                    {"term": "gypsy", "action": "off"},
                    {
                        "term": "blue devil",
                        "action": "note",
                        "explanation": "'{term}' is a local house term.",
                    },
                ],
                "categories": {"slur": {"action": "note"}},
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(Refused):
        g.check_text("savages")  # re-read without restarting: the file's mtime changed
    assert g.check_text("a gypsy caravan") == []
    assert g.check_text("Blue devils") == ["Content note: 'blue devil' is a local house term."]
    assert g.check_text(slur())[0].startswith("Content note: The query contains a slur")
    (coll.root / "guardrails.json").write_text(
        '{"terms": [{"term": "x", "action": "shout"}]}', encoding="utf-8"
    )
    with pytest.raises(BadInput, match="action must be one of note, block, off"):
        g.check_text("anything")


def test_terms_file_setting_csv(coll, tmp_path, monkeypatch):
    path = tmp_path / "terms.csv"
    path.write_text("term,action,category,explanation\npirate,block,local,'{term}' is blocked here.\n")
    monkeypatch.setenv("ILLUSTRA_TERMS_FILE", str(path))
    g = Guardrails(coll.root)
    with pytest.raises(Refused, match="'pirate' is blocked here"):
        g.check_text("Pirates at sea")
    monkeypatch.setenv("ILLUSTRA_TERMS_FILE", str(tmp_path / "missing.csv"))
    with pytest.raises(BadInput, match="does not exist"):
        Guardrails(coll.root).check_text("pirates")


# -- language ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "le chat noir",
        "ein Schiff auf dem Meer",
        "el gato negro",
        "gatto nero",
        "Москва",
        "東京の地図",
        "straße",
    ],
)
def test_non_english_queries_are_noticed(query):
    assert guess_is_english(query) is False


@pytest.mark.parametrize(
    "query",
    [
        "a cat",
        "Leonardo da Vinci",
        "a map of the world",
        "Zürich",
        "frontispiece",
        "café interior",
        "Tour de France",
    ],
)
def test_english_queries_and_names_are_not(query):
    assert guess_is_english(query) is True


def test_language_notice_through_the_search_service(coll, monkeypatch):
    svc = SearchService(coll)
    resp = svc.search_text("le chat rouge", k=3)
    assert any("evaluated in English" in n for n in resp.notices)
    assert len(resp.results) == 3  # a notice, not a refusal
    assert not any("English" in n for n in svc.search_text("a red plate", k=3).notices)
    monkeypatch.setenv("ILLUSTRA_LANGUAGE_NOTICE", "0")
    assert SearchService(coll).search_text("le chat rouge", k=3).notices == []


# -- faces ---------------------------------------------------------------------------------------
def test_a_face_photograph_is_detected_and_refused(coll):
    photo = face_photo()
    found = face_dominates(photo)
    assert found is not None and found.fraction > 0.1 and found.photographic
    x, y, w, h = found.box
    assert 100 < x + w / 2 < 400 and 80 < y + h / 2 < 350  # the box is on her face
    svc = SearchService(coll)
    with pytest.raises(Refused) as err:
        svc.search_image(photo, k=3)
    assert str(err.value) == FACE_REFUSAL and "out of scope" in FACE_REFUSAL
    # A cropped, flipped, rescaled copy is still refused.
    crop = photo.crop((80, 40, 460, 420)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((900, 900))
    with pytest.raises(Refused):
        svc.search_image(crop, k=3)


def test_non_face_pictures_pass():
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    shapes = Image.new("RGB", (400, 300), "white")
    d = ImageDraw.Draw(shapes)
    d.ellipse((100, 50, 300, 250), outline="black", width=4)
    d.rectangle((20, 20, 120, 90), fill="navy")
    for im in (noise, shapes, solid("red", (64, 64))):
        assert face_dominates(im) is None


def test_ordinary_uploads_pass(coll, hostile_dir):
    svc = SearchService(coll)
    for name in ("ok_plain.jpg", "ok_progressive.jpg", "ok_grayscale.png", "ok_cmyk.jpg"):
        svc.search_image(str(hostile_dir / name), k=2)  # no Refused


def test_small_faces_and_drawn_faces_pass():
    photo = face_photo()
    # The same face as a small part of a large scene does not dominate it.
    scene = Image.new("RGB", (2000, 1600), (120, 130, 110))
    scene.paste(photo.resize((300, 256)), (850, 600))
    assert face_dominates(scene) is None
    # A flat-colour drawing of a face is found but is not a photograph.
    drawing = photo.filter(ImageFilter.MedianFilter(5)).quantize(4).convert("RGB")
    found = largest_face(drawing)
    assert found is not None and not found.photographic
    assert face_dominates(drawing) is None


def test_face_guard_can_be_turned_off_and_like_still_works(coll, monkeypatch):
    svc = SearchService(coll)
    assert svc.search_like("red/00", k=3).results  # items in the collection: "more like this" works
    monkeypatch.setenv("ILLUSTRA_FACE_GUARD", "false")
    assert SearchService(coll).search_image(face_photo(), k=3).results
    monkeypatch.delenv("ILLUSTRA_FACE_GUARD")
    (coll.root / "guardrails.json").write_text('{"face_guard": false}', encoding="utf-8")
    assert SearchService(coll).search_image(face_photo(), k=3).results


# -- hidden items --------------------------------------------------------------------------------
def test_hidden_items_leave_every_search_and_come_back(coll):
    svc = SearchService(coll)
    assert "red/00" in [h.id for h in svc.search_text("red", k=6).results]
    store = FeedbackStore(coll.root)
    store.add("red/00", "red", "offensive or harmful")
    assert store.hide("red/00")
    ids = [h.id for h in svc.search_text("red", k=10).results]
    assert "red/00" not in ids and len(ids) == 10
    assert "red/00" not in [h.id for h in svc.search_like("red/01", k=10).results]
    assert "red/00" not in [h.id for h in svc.search_image(solid("red"), k=10).results]
    assert store.unhide("red/00")
    assert "red/00" in [h.id for h in svc.search_text("red", k=6).results]
    # Guardrails off (owner's choice for e.g. an internal review server): hidden items show.
    store.hide("red/00")
    assert "red/00" in [h.id for h in SearchService(coll, guardrails=False).search_text("red", k=6).results]


def test_hidden_ids_are_cached_until_the_store_changes(coll):
    g = Guardrails(coll.root)
    assert g.hidden_ids() == frozenset()
    assert not (coll.root / "feedback.sqlite").exists()  # reading creates nothing
    store = FeedbackStore(coll.root)
    store.hide("blue/01")
    first = g.hidden_ids()
    assert first == {"blue/01"} and g.hidden_ids() is first  # cached object while unchanged
    store.hide("blue/02")
    assert g.hidden_ids() == {"blue/01", "blue/02"}


# -- through the API -----------------------------------------------------------------------------
def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_api_refusals_and_notices(coll):
    with TestClient(create_app(coll.root), raise_server_exceptions=False) as client:
        r = client.get("/api/search", params={"q": "savages", "k": 2})
        assert r.status_code == 200 and r.json()["notices"][0].startswith("Content note:")
        r = client.get("/api/search", params={"q": f"the {slur()}"})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "refused"
        r = client.post("/api/search/image", files={"image": ("me.png", _png(face_photo()), "image/png")})
        assert r.status_code == 403 and r.json()["error"] == {"code": "refused", "message": FACE_REFUSAL}
        r = client.post(
            "/api/search/image", files={"image": ("b.png", _png(solid("blue", (64, 64))), "image/png")}
        )
        assert r.status_code == 200 and r.json()["results"][0]["id"].startswith("blue/")
        page = client.get("/search", params={"q": f"a {slur()}"})
        assert page.status_code == 403 and "The server refused this search." in page.text
