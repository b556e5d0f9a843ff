"""Embedding a collection: hostile images, resume after kill -9, several models side by side."""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from illustra import images
from illustra.cli import main
from illustra.collection import Collection
from illustra.embed import embed_collection
from illustra.embedding_store import EmbeddingStore, embedded_models
from illustra.encoders import load_encoder, register_encoder
from illustra.encoders.base import decode_side
from illustra.errors import ModelMismatch

from . import tiny_clip
from .embed_runner import SlowFakeEncoder
from .fakes import COLOURS, FakeEncoder, solid
from .hostile import EXPECTED
from .killkit import kill_after_chunks
from .tiny_clip import build_tiny_clip

# Session-scoped model directories (see tests/tiny_clip.py).
tiny_clip_dir = tiny_clip.tiny_clip_dir
tiny_clip_dir_wide = tiny_clip.tiny_clip_dir_wide

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILLUSTRA_TORCH_THREADS", "1")


def _jpeg(im: Image.Image) -> bytes:
    return images.encode_stored(im)


def _expected(hostile_dir: Path) -> dict[str, str]:
    with open(hostile_dir / "EXPECTED.tsv", encoding="utf-8") as fh:
        found = {r["file"]: r["expected"] for r in csv.DictReader(fh, delimiter="\t")}
    assert found == EXPECTED
    return found


def _hostile_collection(root: Path, hostile_dir: Path) -> Collection:
    """Every hostile file as a row, its bytes stored raw so the embedder meets them as they are."""
    rows = [
        {"id": name, "image": {"bytes": (hostile_dir / name).read_bytes(), "path": None}, "title": name}
        for name in sorted(_expected(hostile_dir))
    ]
    rows.insert(3, {"id": "catalogue-only", "title": "an entry without a picture"})
    return Collection.create(root, rows, source={"kind": "test"})


def _colour_collection(root: Path, n: int) -> Collection:
    names = list(COLOURS)
    rows = []
    for i in range(n):
        if i % 7 == 3:
            rows.append({"id": f"item-{i:03d}", "title": f"text only {i}"})
        else:
            rows.append(
                {"id": f"item-{i:03d}", "image": {"bytes": _jpeg(solid(names[i % len(names)])), "path": None}}
            )
    return Collection.create(root, rows, source={"kind": "test"})


def _ids_of(coll: Collection, model: str) -> list[str]:
    store = EmbeddingStore(coll, model)
    return [str(coll.ids[r]) for r in store.rows()]


def _skipped_tsv(coll: Collection, model: str) -> dict[str, str]:
    path = EmbeddingStore(coll, model).skipped_path
    with open(path, encoding="utf-8") as fh:
        return {r["id"]: r["reason"] for r in csv.DictReader(fh, delimiter="\t")}


def _image_rows(coll: Collection) -> list[int]:
    return [r for r in range(len(coll)) if coll.has_image(r)]


@pytest.mark.parametrize("model", ["fake", "tiny-clip"])
def test_hostile_images_are_embedded_or_skipped_with_reason(
    hostile_dir: Path, tmp_path: Path, tiny_clip_dir: Path, model: str
) -> None:
    coll = _hostile_collection(tmp_path / "coll", hostile_dir)
    enc = load_encoder("fake" if model == "fake" else str(tiny_clip_dir))
    summary = embed_collection(coll, enc, batch_size=4, workers=2, chunk_rows=5, progress=False)

    expected = _expected(hostile_dir)
    accept = {f for f, e in expected.items() if e == "accept"}
    skip = {f for f, e in expected.items() if e == "skip"}
    assert summary.embedded == len(accept)
    assert summary.skipped == len(skip)
    assert summary.no_image == 1  # the catalogue-only row is not an error
    coll = Collection(coll.root)
    assert set(_ids_of(coll, enc.name)) == accept
    reasons = _skipped_tsv(coll, enc.name)
    assert set(reasons) == skip
    assert all(reasons.values())
    assert "empty" in reasons["bad_empty.png"]
    assert "pixel" in reasons["bad_bomb_1bit.png"]
    vecs = EmbeddingStore(coll, enc.name).vectors()
    assert vecs.shape == (len(accept), enc.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    entry = coll.manifest["embeddings"][enc.name]
    assert entry["complete"] and entry["count"] == len(accept) and entry["skipped"] == len(skip)


def test_vectors_are_those_of_the_encoder_in_row_order(tmp_path: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 30)
    enc = load_encoder("fake")
    embed_collection(coll, enc, batch_size=3, workers=2, chunk_rows=8, progress=False)
    store = EmbeddingStore(Collection(coll.root), "fake")
    rows = store.rows()
    assert rows.tolist() == _image_rows(coll)
    side = decode_side(enc)
    direct = enc.embed_images([images.decode(coll.image_bytes(r) or b"", min_side=side) for r in rows])
    np.testing.assert_allclose(np.asarray(store.vectors()), direct, atol=1e-6)


def test_second_run_does_nothing(tmp_path: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 20)
    first = embed_collection(coll, SlowFakeEncoder(delay=0), chunk_rows=6, progress=False)
    again = SlowFakeEncoder(delay=0)
    second = embed_collection(Collection(coll.root), again, chunk_rows=6, progress=False)
    assert again.images_seen == 0
    assert second.embedded == 0
    assert second.already_done == first.embedded == len(_image_rows(coll))
    assert second.total_vectors == first.total_vectors


def test_rows_that_gain_an_image_are_embedded_later(tmp_path: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 20)
    embed_collection(coll, SlowFakeEncoder(delay=0), chunk_rows=8, progress=False)
    assert "item-003" not in _ids_of(Collection(coll.root), "slowfake")
    # The image that failed to download earlier arrives: same id, same row, now with a picture.
    Collection.create(
        coll.root,
        [{"id": "item-003", "image": {"bytes": _jpeg(solid("cyan")), "path": None}}],
        source={"kind": "test"},
        on_duplicate="replace",
    )
    enc = SlowFakeEncoder(delay=0)
    summary = embed_collection(Collection(coll.root), enc, chunk_rows=8, progress=False)
    assert enc.images_seen == 1 and summary.embedded == 1
    ids = _ids_of(Collection(coll.root), "slowfake")
    assert ids.count("item-003") == 1


def test_killed_run_resumes_every_image_exactly_once(tmp_path: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 48)
    all_rows = _image_rows(coll)
    chunk_dir = EmbeddingStore(coll, "slowfake").chunk_dir
    env = {**os.environ, "SLOWFAKE_DELAY": "0.3", "ILLUSTRA_EMBED_CHUNK_ROWS": "4"}
    kill_after_chunks(
        [sys.executable, "-m", "tests.embed_runner", "embed", "--collection", str(coll.root)]
        + ["--model", "slowfake", "--batch-size", "2", "--no-progress"],
        chunk_dir,
        cwd=REPO,
        env=env,
    )

    store = EmbeddingStore(Collection(coll.root), "slowfake")
    done_before, _ = store.done_rows()
    assert 0 < len(done_before) < len(all_rows)
    assert not (store.dir / "vectors.npy").exists()

    enc = SlowFakeEncoder(delay=0)
    summary = embed_collection(Collection(coll.root), enc, progress=False, chunk_rows=4)
    assert enc.images_seen == len(all_rows) - len(done_before)  # nothing embedded twice
    assert summary.already_done == len(done_before)
    coll = Collection(coll.root)
    store = EmbeddingStore(coll, "slowfake")
    assert store.rows().tolist() == all_rows  # nothing lost, nothing duplicated
    # Same vectors as one uninterrupted run.
    clean = _colour_collection(tmp_path / "clean", 48)
    embed_collection(clean, SlowFakeEncoder(delay=0), progress=False)
    np.testing.assert_allclose(
        np.asarray(store.vectors()), np.asarray(EmbeddingStore(Collection(clean.root), "slowfake").vectors())
    )


def test_second_model_gets_its_own_folder(tmp_path: Path, tiny_clip_dir_wide: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 12)
    embed_collection(coll, load_encoder("fake"), progress=False)
    fake_before = np.array(EmbeddingStore(Collection(coll.root), "fake").vectors())
    clip = load_encoder(str(tiny_clip_dir_wide))
    embed_collection(Collection(coll.root), clip, progress=False)

    coll = Collection(coll.root)
    assert set(embedded_models(coll)) == {"fake", str(tiny_clip_dir_wide)}
    fake_store, clip_store = EmbeddingStore(coll, "fake"), EmbeddingStore(coll, clip.name)
    assert fake_store.dir != clip_store.dir
    assert clip_store.vectors().shape == (len(_image_rows(coll)), 24)
    np.testing.assert_array_equal(np.asarray(fake_store.vectors()), fake_before)
    assert coll.manifest["embeddings"][clip.name]["dim"] == 24
    assert coll.manifest["embeddings"]["fake"]["dim"] == 16


def test_same_model_name_with_another_dimension_is_refused(tmp_path: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 6)
    model_dir = build_tiny_clip(tmp_path / "model", projection_dim=16)
    embed_collection(coll, load_encoder(str(model_dir)), progress=False)
    # The directory is overwritten with a different model under the same name.
    build_tiny_clip(model_dir, projection_dim=8)
    from illustra.encoders.clip import ClipEncoder

    with pytest.raises(ModelMismatch, match="16-dimensional"):
        embed_collection(Collection(coll.root), ClipEncoder(str(model_dir)), progress=False)


class _PickyEncoder(FakeEncoder):
    """A model that rejects one particular input (a 1-pixel-wide image), as real models sometimes do."""

    name = "picky"

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if any(im.size[0] == 1 for im in images):
            raise ValueError("input too small")
        return super().embed_images(images)


def test_an_input_the_model_rejects_is_skipped_not_fatal(tmp_path: Path) -> None:
    rows = [{"id": f"ok-{i}", "image": {"bytes": _jpeg(solid("red")), "path": None}} for i in range(5)]
    rows.insert(2, {"id": "thin", "image": {"bytes": _jpeg(Image.new("RGB", (1, 30), "blue")), "path": None}})
    coll = Collection.create(tmp_path / "coll", rows, source={"kind": "test"})
    summary = embed_collection(coll, _PickyEncoder(), batch_size=4, progress=False)
    assert summary.embedded == 5 and summary.skipped == 1
    coll = Collection(coll.root)
    assert "thin" not in _ids_of(coll, "picky")
    assert "input too small" in _skipped_tsv(coll, "picky")["thin"]


def test_cli_embed_prints_one_line_summary(tmp_path: Path) -> None:
    coll = _colour_collection(tmp_path / "coll", 10)
    register_encoder("fake", FakeEncoder)
    result = CliRunner().invoke(
        main, ["embed", "--collection", str(coll.root), "--model", "fake", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"embedded {len(_image_rows(coll))} images with fake")
    assert "rows without an image" in lines[0]
    assert embedded_models(Collection(coll.root)) == ["fake"]
