"""The fast text-query path of CLIP-family encoders: INT8 text tower (ONNX Runtime) and query cache."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from illustra import settings
from illustra.encoders import text_fast
from illustra.encoders.clip import ClipEncoder, normalise_query

from . import tiny_clip

tiny_clip_dir = tiny_clip.tiny_clip_dir
tiny_siglip_dir = tiny_clip.tiny_siglip_dir

QUERIES = [
    "ship",
    "a blue map of london with streets",
    "portrait of a man in a hat",
    "Napoléon à Sainte-Hélène",
    "",
    "x" * 300,
    "engraving of a cathedral and a bridge, 1850",
]


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILLUSTRA_TORCH_THREADS", "1")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("which", ["clip", "siglip"])
def test_int8_query_vectors_agree_with_fp32(
    which: str, tiny_clip_dir: Path, tiny_siglip_dir: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    model_dir = tiny_clip_dir if which == "clip" else tiny_siglip_dir
    monkeypatch.setenv("ILLUSTRA_QUERY_PRECISION", "int8")
    enc = ClipEncoder(str(model_dir))
    assert enc.query_precision == "int8"
    fast = enc.embed_texts(QUERIES)
    assert enc._int8 is not None  # the INT8 tower answered, not a fallback
    ref = enc._embed_texts([normalise_query(q) for q in QUERIES], "fp32")
    assert fast.dtype == np.float32 and fast.shape == ref.shape
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(fast * ref, axis=1))) >= 0.99
    # A text's vector does not depend on the other texts of its batch.
    np.testing.assert_allclose(fast[1], enc._embed_texts([QUERIES[1]])[0], atol=1e-6)
    # Rankings over an index of random unit vectors agree with float32's.
    index = np.random.default_rng(0).standard_normal((500, enc.dim)).astype(np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    top_fast = np.argsort(-(fast @ index.T), axis=1)[:, :10]
    top_ref = np.argsort(-(ref @ index.T), axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_fast, top_ref, strict=True)])
    assert overlap >= 0.7


def test_int8_tower_is_kept_on_disk_and_reused(
    tiny_siglip_dir: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    monkeypatch.setenv("ILLUSTRA_QUERY_PRECISION", "int8")
    first = ClipEncoder(str(tiny_siglip_dir))
    a = first._embed_texts(["a red ship"])
    folders = list((tiny_siglip_dir / text_fast.FOLDER).iterdir())
    assert len(folders) == 1 and (folders[0] / "text_int8.onnx").is_file()
    assert not list(folders[0].glob("text_fp32*"))  # only the quantised tower is kept

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt although a current copy is on disk")

    monkeypatch.setattr(text_fast, "build", no_build)
    second = ClipEncoder(str(tiny_siglip_dir))
    np.testing.assert_array_equal(a, second._embed_texts(["a red ship"]))


def test_auto_uses_int8_on_cpu(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ILLUSTRA_QUERY_PRECISION", raising=False)
    assert ClipEncoder(str(tiny_clip_dir)).query_precision == "int8"
    monkeypatch.setenv("ILLUSTRA_QUERY_PRECISION", "fp32")
    assert ClipEncoder(str(tiny_clip_dir)).query_precision == "fp32"


def test_auto_falls_back_to_torch_when_int8_disagrees(
    tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ILLUSTRA_QUERY_PRECISION", "auto")
    monkeypatch.setattr(text_fast, "MIN_COSINE", 1.01)  # no INT8 tower can meet this
    enc = ClipEncoder(str(tiny_clip_dir))
    vec = enc._embed_texts(["a red ship"])
    assert enc._int8 is None
    np.testing.assert_allclose(vec, enc._embed_texts(["a red ship"], "bf16" if enc._autocast else "fp32"))


def test_repeated_query_is_served_from_the_cache(
    tiny_siglip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = ClipEncoder(str(tiny_siglip_dir))
    calls: list[int] = []
    real = enc._text_forward

    def counting(inputs: dict[str, np.ndarray], precision: str | None = None) -> np.ndarray:
        calls.append(len(inputs["input_ids"]))
        return real(inputs, precision)

    monkeypatch.setattr(enc, "_text_forward", counting)
    a = enc.embed_texts(["a red ship"])
    assert calls == [1]
    b = enc.embed_texts(["  a red   ship "])  # the same query after whitespace normalisation
    c = enc.embed_query("a red ship")
    assert calls == [1]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], c)
    b[0, 0] = 42.0  # callers get their own copy; the cached vector is untouched
    np.testing.assert_array_equal(a, enc.embed_texts(["a red ship"]))
    # A batch mixing cached and new queries embeds only the new ones.
    out = enc.embed_texts(["a red ship", "a map", "a map"])
    assert calls == [1, 1]
    np.testing.assert_array_equal(out[0], a[0])
    np.testing.assert_array_equal(out[1], out[2])


def test_query_cache_is_bounded(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = ClipEncoder(str(tiny_clip_dir))
    enc.cache_size = 3
    for i in range(10):
        enc.embed_texts([f"query {i}"])
    assert list(enc._cache) == ["query 7", "query 8", "query 9"]
    enc.embed_texts(["query 7"])  # a hit becomes the most recent
    enc.embed_texts(["query 10"])
    assert list(enc._cache) == ["query 9", "query 7", "query 10"]
    # Bulk embedding bypasses the cache.
    enc.embed_texts([f"document {i}" for i in range(50)])
    assert len(enc._cache) == 3


def test_query_cache_is_thread_safe(tiny_clip_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    enc = ClipEncoder(str(tiny_clip_dir))
    enc.cache_size = 5
    qs = [f"q{i % 12}" for i in range(120)]
    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(lambda q: enc.embed_texts([q])[0], qs))
    assert len(enc._cache) <= 5
    for q, v in zip(qs, out, strict=True):
        np.testing.assert_allclose(v, out[qs.index(q)], atol=1e-6)


def test_bad_query_precision_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILLUSTRA_QUERY_PRECISION", "int4")
    with pytest.raises(settings.BadSetting) as err:
        settings.Settings.load({})
    msg = str(err.value)
    assert "\n" not in msg
    assert "ILLUSTRA_QUERY_PRECISION" in msg and "auto, fp32, bf16, int8" in msg
