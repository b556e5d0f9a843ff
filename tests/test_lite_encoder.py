"""The offline ``lite`` encoder, exercised with its real towers (EfficientNet-Lite0 + MiniLM).

Test pictures are public-domain Open Clip Art drawings (see tests/data/CREDITS.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from illustra.encoders import load_encoder
from illustra.encoders.lite import (
    SHIPPED_BANK,
    LiteEncoder,
    _read_bank,
    class_sentences,
    combine_sentences,
    load_classes,
)
from illustra.errors import BadInput
from illustra.images import open_image

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def lite() -> LiteEncoder:
    enc = load_encoder("lite")
    assert isinstance(enc, LiteEncoder)
    return enc


@pytest.fixture(scope="module")
def cat() -> Image.Image:
    return open_image(DATA / "cat.png", max_side=LiteEncoder.image_side)


@pytest.fixture(scope="module")
def dog() -> Image.Image:
    return open_image(DATA / "dog.png", max_side=LiteEncoder.image_side)


def _assert_unit_rows(x: np.ndarray, n: int, dim: int) -> None:
    assert x.shape == (n, dim)
    assert x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_identity_matches_the_encoder_contract(lite: LiteEncoder) -> None:
    assert (lite.name, lite.dim, lite.image_side) == ("lite", 384, 224)


def test_text_vectors_are_unit_float32_rows(lite: LiteEncoder) -> None:
    _assert_unit_rows(lite.embed_texts(["a cat", "a steam locomotive", "  map of   London "]), 3, 384)


def test_image_vectors_are_unit_float32_rows(lite: LiteEncoder, cat: Image.Image, dog: Image.Image) -> None:
    odd = [Image.new("RGB", (1, 1), "white"), Image.new("L", (900, 20), 0)]  # tiny, extreme, greyscale
    _assert_unit_rows(lite.embed_images([cat, dog, *odd]), 4, 384)


def test_empty_inputs_give_empty_arrays(lite: LiteEncoder) -> None:
    for out in (lite.embed_texts([]), lite.embed_images([])):
        assert out.shape == (0, 384) and out.dtype == np.float32
    assert lite.embed_images_visual([]).shape == (0, lite.visual_dim)


def test_same_input_gives_same_vector(lite: LiteEncoder, cat: Image.Image, dog: Image.Image) -> None:
    assert np.array_equal(lite.embed_texts(["a cat"]), lite.embed_texts(["a cat"]))
    assert np.array_equal(lite.embed_images([cat]), lite.embed_images([cat]))
    # A vector does not depend on what else is in the batch.
    together = lite.embed_texts(["a cat", "an old map of a harbour with ships"])
    assert np.allclose(together[0], lite.embed_texts(["a cat"])[0], atol=1e-5)
    assert np.allclose(lite.embed_images([dog, cat])[1], lite.embed_images([cat])[0], atol=1e-5)


def test_cat_drawing_ranks_a_cat_above_a_truck(lite: LiteEncoder, cat: Image.Image) -> None:
    img = lite.embed_images([cat])[0]
    cat_q, truck_q = lite.embed_texts(["a cat", "a truck"])
    assert img @ cat_q > img @ truck_q


def test_dog_drawing_ranks_a_dog_first(lite: LiteEncoder, dog: Image.Image) -> None:
    queries = ["a dog", "a cat", "a truck", "a tree", "a house", "a clock"]
    scores = lite.embed_texts(queries) @ lite.embed_images([dog])[0]
    assert queries[int(np.argmax(scores))] == "a dog"


def test_a_query_finds_its_picture_among_others(
    lite: LiteEncoder, cat: Image.Image, dog: Image.Image
) -> None:
    gallery = lite.embed_images([cat, dog])
    assert int(np.argmax(gallery @ lite.embed_texts(["a kitten"])[0])) == 0
    assert int(np.argmax(gallery @ lite.embed_texts(["a beagle"])[0])) == 1


def test_classifier_sees_a_cat(lite: LiteEncoder, cat: Image.Image) -> None:
    names = [n for n, _ in lite.top_classes(cat, k=3)]
    cats = {c.name for c in load_classes() if c.category == "cat"}
    assert cats & set(names), names


def test_visual_features_find_the_same_picture(lite: LiteEncoder, cat: Image.Image, dog: Image.Image) -> None:
    v = lite.embed_images_visual([cat, dog, cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    _assert_unit_rows(v, 3, lite.visual_dim)
    assert v[2] @ v[0] > v[2] @ v[1]


def test_non_images_are_refused(lite: LiteEncoder) -> None:
    with pytest.raises(BadInput):
        lite.embed_images(["not an image"])  # type: ignore[list-item]


def test_shipped_class_bank_is_current(lite: LiteEncoder) -> None:
    """The bank in the package matches the recipe and the text tower, so no first-load rebuild."""
    shipped = _read_bank(SHIPPED_BANK, lite.bank_key())
    assert shipped is not None, "run: python benchmarks/tune_lite.py --write-bank"
    some = [lite.classes[i] for i in (0, 281, 817)]
    triples = class_sentences(some, lite.recipe)
    rows = combine_sentences(
        [(k, w, s) for k, w, s in triples], lite.embed_sentences([s for _, _, s in triples]), 1000, False
    )
    if not lite.recipe.centre:
        for c in some:
            assert float(rows[c.index] @ shipped[c.index]) > 0.999


def test_class_table_is_complete() -> None:
    classes = load_classes()
    assert len(classes) == 1000
    assert classes[281].wnid == "n02123045" and "tabby" in classes[281].lemmas
    assert all(c.name and c.lemmas and c.gloss for c in classes)


def test_lite_visual_is_a_picture_only_companion(cat: Image.Image, dog: Image.Image) -> None:
    from illustra.encoders import similarity_model_of

    assert similarity_model_of("lite") == "lite-visual"
    visual = load_encoder("lite-visual")
    assert visual.name == "lite-visual" and visual.dim == 1280
    vecs = visual.embed_images([cat, dog, cat])
    assert vecs.shape == (3, 1280) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vecs[0], vecs[2], atol=1e-6)
    with pytest.raises(BadInput, match="pictures with pictures"):
        visual.embed_texts(["a cat"])
