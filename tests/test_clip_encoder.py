"""The CLIP-family encoder, loaded the way users load it: ``load_encoder(path)`` on a model directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from illustra.collection import Collection
from illustra.encoders import load_encoder
from illustra.encoders.clip import ClipEncoder
from illustra.errors import ModelUnavailable

from . import tiny_clip

# Session-scoped model directories (see tests/tiny_clip.py).
tiny_clip_dir = tiny_clip.tiny_clip_dir
tiny_siglip_dir = tiny_clip.tiny_siglip_dir


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny models gain nothing from threads, and on a busy machine thread hand-offs dominate.
    monkeypatch.setenv("ILLUSTRA_TORCH_THREADS", "1")


def _pictures() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    out = [
        Image.new("RGB", (80, 60), (220, 20, 20)),
        Image.new("RGB", (60, 90), (20, 20, 220)),
        Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)),
        Image.new("L", (40, 40), 128),  # greyscale input is converted, not refused
    ]
    return out


def _assert_unit_rows(x: np.ndarray, n: int, dim: int) -> None:
    assert x.dtype == np.float32
    assert x.shape == (n, dim)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_clip_directory_loads_with_shape_from_config(tiny_clip_dir: Path) -> None:
    enc = load_encoder(str(tiny_clip_dir))
    assert isinstance(enc, ClipEncoder)
    assert enc.name == str(tiny_clip_dir)  # what the user passed, recorded in manifests
    assert enc.dim == 16  # projection_dim
    assert enc.image_side == 32  # the processor's crop size
    assert enc.describe()["model_type"] == "clip"


def test_clip_image_and_text_vectors_are_unit_float32(tiny_clip_dir: Path) -> None:
    enc = load_encoder(str(tiny_clip_dir))
    imgs = enc.embed_images(_pictures())
    _assert_unit_rows(imgs, 4, 16)
    assert not np.allclose(imgs[0], imgs[1])  # different pictures, different vectors
    texts = enc.embed_texts(["a red ship", "a map of london", "", "x" * 500])  # empty and over-long too
    _assert_unit_rows(texts, 4, 16)
    assert enc.embed_images([]).shape == (0, 16)
    assert enc.embed_texts([]).shape == (0, 16)


def test_clip_vectors_are_deterministic_across_loads_and_batching(
    tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILLUSTRA_CPU_PRECISION", "fp32")
    pics = _pictures()
    a = ClipEncoder(str(tiny_clip_dir))
    b = ClipEncoder(str(tiny_clip_dir))
    np.testing.assert_array_equal(a.embed_images(pics), b.embed_images(pics))
    np.testing.assert_array_equal(a.embed_texts(["portrait of a man"]), b.embed_texts(["portrait of a man"]))
    # One image alone or in a batch: the same vector; texts likewise despite padding to the longest.
    together = a.embed_images(pics)
    alone = np.concatenate([a.embed_images([p]) for p in pics])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    t_batch = a.embed_texts(["ship", "an engraving of a cathedral and a bridge"])
    np.testing.assert_allclose(t_batch[0], a.embed_texts(["ship"])[0], atol=1e-5)


def test_bf16_inference_agrees_with_fp32(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pics = _pictures()
    monkeypatch.setenv("ILLUSTRA_CPU_PRECISION", "fp32")
    full = ClipEncoder(str(tiny_clip_dir))
    monkeypatch.setenv("ILLUSTRA_CPU_PRECISION", "bf16")
    half = ClipEncoder(str(tiny_clip_dir))
    assert half.describe()["precision"] == "bfloat16 autocast"
    a, b = full.embed_images(pics), half.embed_images(pics)
    _assert_unit_rows(b, 4, 16)
    assert float(np.min(np.sum(a * b, axis=1))) > 0.99
    t = np.sum(full.embed_texts(["a red ship"]) * half.embed_texts(["a red ship"]))
    assert float(t) > 0.99
    # Still deterministic within one precision.
    np.testing.assert_array_equal(b, half.embed_images(pics))


def test_prepared_path_matches_embed_images(tiny_clip_dir: Path) -> None:
    enc = load_encoder(str(tiny_clip_dir))
    assert isinstance(enc, ClipEncoder)
    pics = _pictures()
    prepared = [enc.prepare_image(p) for p in pics]
    assert prepared[0]["pixel_values"].shape == (1, 3, 32, 32)
    np.testing.assert_array_equal(enc.embed_prepared(prepared), enc.embed_images(pics))


def test_extreme_aspect_images_are_bounded(tiny_clip_dir: Path) -> None:
    enc = load_encoder(str(tiny_clip_dir))
    assert isinstance(enc, ClipEncoder)
    strip = Image.new("RGB", (12000, 8), (10, 200, 10))
    tower = Image.new("RGB", (3, 5000), (10, 10, 200))
    for im in (strip, tower):
        assert enc.prepare_image(im)["pixel_values"].shape == (1, 3, 32, 32)
    _assert_unit_rows(enc.embed_images([strip, tower]), 2, 16)


def test_siglip_directory_loads_and_pads_texts_to_fixed_length(tiny_siglip_dir: Path) -> None:
    enc = load_encoder(str(tiny_siglip_dir))
    assert isinstance(enc, ClipEncoder)
    assert enc.dim == 32  # SigLIP: the vision width, no separate projection
    assert enc.image_side == 32
    _assert_unit_rows(enc.embed_images(_pictures()), 4, 32)
    texts = enc.embed_texts(["ship", "a blue map of london with streets"])
    _assert_unit_rows(texts, 2, 32)
    # SigLIP pools the last position, so only fixed-length padding makes a text's vector independent
    # of the other texts in its batch.
    np.testing.assert_allclose(texts[0], enc.embed_texts(["ship"])[0], atol=1e-5)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        ClipEncoder(str(tmp_path / "no-such-model-dir"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="not a model directory"):
        ClipEncoder(str(tmp_path / "empty"))


def test_directory_with_broken_weights_is_a_clear_error(tiny_clip_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_clip_dir.iterdir():
        if f.is_file():  # not the INT8 text tower kept beside the model
            (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelUnavailable) as info:
        ClipEncoder(str(broken))
    assert str(broken) in str(info.value)
    assert "\n" not in str(info.value)


def test_text_only_model_is_refused(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelUnavailable, match="not an image-text model"):
        ClipEncoder(str(tmp_path / "bert"))


def test_uncached_hub_model_offline_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as info:
        ClipEncoder("illustra-test/no-such-model")
    msg = str(info.value)
    assert "\n" not in msg
    assert "'illustra-test/no-such-model' is not available locally" in msg
    assert "--model lite" in msg


def test_cli_offline_unknown_model_prints_one_line(tmp_path: Path) -> None:
    coll = tmp_path / "coll"
    Collection.create(coll, [{"id": "a", "title": "t"}], source={"kind": "test"})
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", "from illustra.cli import main; main()", "embed", "--collection", str(coll)]
        + ["--model", "nobody/no-such-model"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == ModelUnavailable.exit_code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: model 'nobody/no-such-model' is not available locally")
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_precision_plan_per_device() -> None:
    """Weights stay float32 everywhere; GPUs run mixed precision, CPUs bf16 only when chosen.
    (The GPU branch is checked as a decision here: no GPU runs in the test suite.)"""
    from illustra.encoders.clip import precision_plan

    assert precision_plan("cuda", cpu_bf16=False, cuda_bf16=True) == "bfloat16"
    assert precision_plan("cuda", cpu_bf16=True, cuda_bf16=False) == "float16"
    assert precision_plan("cpu", cpu_bf16=True, cuda_bf16=True) == "bfloat16"
    assert precision_plan("cpu", cpu_bf16=False, cuda_bf16=True) is None
    assert precision_plan("mps", cpu_bf16=True, cuda_bf16=True) is None


def test_fp32_setting_gives_float32(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILLUSTRA_CPU_PRECISION", "fp32")
    enc = ClipEncoder(str(tiny_clip_dir))
    assert enc.describe()["precision"] == "float32"
    assert next(enc.model.parameters()).dtype.is_floating_point and not enc._autocast


def test_int8_pictures_agree_with_fp32_and_do_not_depend_on_their_batch(
    tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_clip_dir, model, ignore=shutil.ignore_patterns(".illustra-*"))
    pics = _pictures()
    monkeypatch.setenv("ILLUSTRA_CPU_PRECISION", "fp32")
    full = ClipEncoder(str(model)).embed_images(pics)
    monkeypatch.setenv("ILLUSTRA_CPU_PRECISION", "int8")
    enc = ClipEncoder(str(model))
    assert enc.describe()["precision"].startswith("int8")
    got = enc.embed_images(pics)
    _assert_unit_rows(got, 4, 16)
    assert float(np.min(np.sum(full * got, axis=1))) > 0.99
    # One picture per call: the same vector alone as within any batch.
    np.testing.assert_array_equal(enc.embed_images(pics[2:3])[0], got[2])
    np.testing.assert_array_equal(enc.embed_images(pics[::-1])[1], got[2])
    (folder,) = (model / ".illustra-image-int8").iterdir()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["agreement"] > 0.99 and set(meta["images_per_s"]) == {"int8", "fp32"}
    built = (folder / "meta.json").stat().st_mtime_ns
    again = ClipEncoder(str(model))  # the kept tower is reused, not rebuilt
    np.testing.assert_array_equal(again.embed_images(pics), got)
    assert (folder / "meta.json").stat().st_mtime_ns == built
    # Text stays on its own path.
    assert enc.embed_texts(["a red ship"]).shape == (1, 16)


def test_auto_precision_is_bf16_where_the_cpu_has_it_else_fp32_never_int8(
    tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from illustra.encoders import clip

    model = tmp_path / "model"
    shutil.copytree(tiny_clip_dir, model, ignore=shutil.ignore_patterns(".illustra-*"))
    monkeypatch.setenv("ILLUSTRA_CPU_PRECISION", "auto")
    for native, expected in ((True, "bfloat16 autocast"), (False, "float32")):
        monkeypatch.setattr(clip, "_native_bf16", lambda native=native: native)
        enc = ClipEncoder(str(model))
        enc.embed_images(_pictures())
        assert enc.describe()["precision"] == expected
    # INT8 pictures rank less like float32 than bf16 does: only an explicit choice builds them.
    assert not (model / ".illustra-image-int8").exists()
