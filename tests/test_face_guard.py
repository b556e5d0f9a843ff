"""The face guard on real pictures: a half-length portrait photograph is refused (service and API),
a drawn portrait of a person is not, and the face_min_fraction setting and the collection owner's
override still apply."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from illustra.api import create_app
from illustra.collection import Collection
from illustra.errors import Refused
from illustra.guardrails import FACE_REFUSAL
from illustra.guardrails.faces import DEFAULT_MIN_FRACTION, face_dominates, largest_face
from illustra.index import build_index
from illustra.search import SearchService
from illustra.settings import SETTINGS

from .searchkit import build_colour_collection

DATA = Path(__file__).parent / "data"


def portrait() -> Image.Image:
    """NASA's half-length portrait of Eileen Collins (scikit-image's ``astronaut``), 384 px."""
    return Image.open(DATA / "astronaut_portrait.jpg").convert("RGB")


def drawn_portrait() -> Image.Image:
    """An Open Clip Art line drawing of Martin Luther King Jr.'s head and shoulders."""
    return Image.open(DATA / "drawn_portrait.png")


@pytest.fixture
def coll(tmp_path: Path) -> Collection:
    c = build_colour_collection(tmp_path / "c")
    build_index(c, "fake")
    return Collection(tmp_path / "c")


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_default_matches_the_setting():
    assert SETTINGS["face_min_fraction"].default == DEFAULT_MIN_FRACTION


def test_a_half_length_portrait_photograph_is_refused(coll):
    photo = portrait()
    found = face_dominates(photo)
    # Her face covers only ~3.5 % of the frame (under the old 8 % threshold) and is photographed.
    assert found is not None and 0.02 < found.fraction < 0.06 and found.photographic
    x, y, w, h = found.box
    assert 120 < x + w / 2 < 220 and 40 < y + h / 2 < 130  # the box is on her face
    with pytest.raises(Refused) as err:
        SearchService(coll).search_image(photo, k=3)
    assert str(err.value) == FACE_REFUSAL
    # The same picture as a larger upload, mirrored, is refused too.
    with pytest.raises(Refused):
        SearchService(coll).search_image(
            photo.resize((1024, 1024)).transpose(Image.Transpose.FLIP_LEFT_RIGHT), k=3
        )


def test_the_portrait_is_refused_through_the_api(coll):
    with TestClient(create_app(coll.root), raise_server_exceptions=False) as client:
        r = client.post("/api/search/image", files={"image": ("me.png", _png(portrait()), "image/png")})
        assert r.status_code == 403
        assert r.json()["error"] == {"code": "refused", "message": FACE_REFUSAL}
        r = client.post("/api/search/image", files={"image": ("d.png", _png(drawn_portrait()), "image/png")})
        assert r.status_code == 200 and r.json()["results"]


def test_two_people_side_by_side_are_refused():
    from matplotlib import cbook

    hopper = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    pair = Image.new("RGB", (768, 384), "white")
    pair.paste(portrait(), (0, 0))
    pair.paste(hopper.resize((328, 384)), (410, 0))
    assert face_dominates(pair) is not None


def test_drawings_of_people_pass(coll):
    drawing = drawn_portrait()
    found = largest_face(drawing)  # the cascades do see a face in the drawing ...
    assert found is not None and found.fraction > 0.05
    assert not found.photographic  # ... but it is drawn
    assert face_dominates(drawing) is None
    svc = SearchService(coll)
    assert svc.search_image(drawing, k=3).results
    for name in ("cat.png", "dog.png"):
        assert face_dominates(Image.open(DATA / name)) is None


def test_a_person_far_away_is_not_portrait_scale():
    scene = Image.new("RGB", (1600, 1200), (110, 130, 120))
    scene.paste(portrait().resize((240, 240)), (700, 500))  # face ~0.1 % of the scene
    assert face_dominates(scene) is None


def test_face_min_fraction_setting_and_owner_override(coll, monkeypatch):
    photo = portrait()
    monkeypatch.setenv("ILLUSTRA_FACE_MIN_FRACTION", "0.08")  # only big faces count
    assert SearchService(coll).search_image(photo, k=3).results
    monkeypatch.delenv("ILLUSTRA_FACE_MIN_FRACTION")
    with pytest.raises(Refused):
        SearchService(coll).search_image(photo, k=3)
    (coll.root / "guardrails.json").write_text('{"face_min_fraction": 0.08}', encoding="utf-8")
    assert SearchService(coll).search_image(photo, k=3).results
    (coll.root / "guardrails.json").write_text('{"face_min_fraction": 0.01}', encoding="utf-8")
    with pytest.raises(Refused):
        SearchService(coll).search_image(photo, k=3)
    (coll.root / "guardrails.json").write_text('{"face_guard": false}', encoding="utf-8")
    assert SearchService(coll).search_image(photo, k=3).results
