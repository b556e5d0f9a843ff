"""sentence-transformers models, built offline as tiny random models in both of its layouts: a CLIP
model under ``0_CLIPModel/`` loads by directory, repo id or short name (from the local Hub cache),
and a multilingual-style text model (``--text-model``) embeds queries into the image model's
space, with its pairing recorded, shown in the model card and named in the language notice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from illustra.cards import card_markdown
from illustra.cli import main
from illustra.collection import Collection
from illustra.encoders import load_encoder
from illustra.encoders.sentence import SentenceTextEncoder
from illustra.errors import ModelMismatch, ModelUnavailable
from illustra.index import build_index
from illustra.search import SearchService, text_model, weak

from .searchkit import colour_rows, embed_with
from .tiny_sentence import CLIP_MODULE, build_st_clip, build_st_text


@pytest.fixture(scope="module")
def st_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("st")
    return {
        "clip": build_st_clip(root / "st-clip"),
        "text": build_st_text(root / "st-text", out_dim=16, languages=["en", "de", "fr", "ja"]),
        "text_wide": build_st_text(root / "st-text-wide", out_dim=24),
    }


@pytest.fixture(scope="module")
def coll_root(st_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stcoll") / "c"
    coll = Collection.create(root, colour_rows(2), source={"kind": "test"})
    embed_with(coll, str(st_dirs["clip"]))
    build_index(Collection(root), str(st_dirs["clip"]))
    return root


def test_a_sentence_transformers_clip_directory_loads_like_its_checkpoint(st_dirs: dict[str, Path]) -> None:
    enc = load_encoder(str(st_dirs["clip"]), fallback=False)
    inner = load_encoder(str(st_dirs["clip"] / CLIP_MODULE["path"]), fallback=False)
    assert enc.dim == inner.dim == 16
    texts = ["a red picture of a ship", "a blue map"]
    assert np.allclose(enc.embed_texts(texts), inner.embed_texts(texts), atol=1e-5)


def test_repo_id_and_short_name_are_found_in_the_local_hub_cache(
    st_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    repo = cache / "models--sentence-transformers--clip-tiny-test"
    snap = repo / "snapshots" / "0123456789abcdef"
    shutil.copytree(st_dirs["clip"], snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123456789abcdef", encoding="utf-8")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    by_id = load_encoder("sentence-transformers/clip-tiny-test", fallback=False)
    by_short = load_encoder("clip-tiny-test", fallback=False)
    q = ["portrait of a man in a hat"]
    assert np.allclose(by_id.embed_texts(q), by_short.embed_texts(q), atol=1e-5)
    assert by_short.name == "clip-tiny-test" and by_short.dim == 16


def test_a_text_model_is_not_an_image_model_and_a_missing_one_says_how_to_get_it(
    st_dirs: dict[str, Path],
) -> None:
    with pytest.raises(ModelUnavailable, match="--text-model"):
        load_encoder(str(st_dirs["text"]), fallback=False)
    with pytest.raises(ModelUnavailable, match="hf download sentence-transformers/no-such-model"):
        SentenceTextEncoder("no-such-model")
    with pytest.raises(ModelUnavailable, match="not a sentence-transformers text model"):
        SentenceTextEncoder(str(st_dirs["clip"]))


def test_queries_through_the_text_model_search_the_image_space(
    st_dirs: dict[str, Path], coll_root: Path
) -> None:
    model = str(st_dirs["clip"])
    svc = SearchService(coll_root, model, text_model=str(st_dirs["text"]))
    enc = SentenceTextEncoder(str(st_dirs["text"]))
    assert enc.languages == ["en", "de", "fr", "ja"]
    q = "eine rote Tafel"
    resp = svc.search_text(q, k=5, mode="visual")
    # The ranking is the text model's query vector against the stored picture vectors.
    expect = np.asarray(Collection(coll_root).ids)[
        np.argsort(
            -(np.load(next((coll_root / "embeddings").glob("*/vectors.npy"))) @ enc.embed_texts([q])[0])
        )
    ]
    assert [h.id for h in resp.results] == [str(x) for x in expect[:5]]
    # The language notice names the languages the text model covers instead of "English only".
    lang = [n for n in resp.notices if "does not look like English" in n]
    assert lang and "en, de, fr, ja" in lang[0] and "English only" not in lang[0]
    # Its own weak-match level, apart from the image model's own text side's.
    assert weak.stored(Collection(coll_root), model, str(st_dirs["text"])) is not None
    # The pairing is recorded beside the vectors and shown in the model card.
    paired = text_model.recorded(Collection(coll_root), model)
    assert paired[str(st_dirs["text"])]["dim"] == 16
    card = card_markdown(Collection(coll_root), [model])
    assert "### Text queries in other languages" in card and "4 languages (en, de, fr, ja)" in card


def test_dimensions_must_match(st_dirs: dict[str, Path], coll_root: Path) -> None:
    with pytest.raises(ModelMismatch, match="24-dimensional.*16-dimensional"):
        SearchService(coll_root, str(st_dirs["clip"]), text_model=str(st_dirs["text_wide"]))
    out = CliRunner().invoke(
        main,
        [
            "search",
            "--collection",
            str(coll_root),
            "--model",
            str(st_dirs["clip"]),
            "--text-model",
            str(st_dirs["text_wide"]),
            "a ship",
        ],
    )
    assert out.exit_code == 5 and len(out.stderr.strip().splitlines()) == 1, out.output


def test_cli_search_and_eval_take_text_model(
    st_dirs: dict[str, Path], coll_root: Path, tmp_path: Path
) -> None:
    base = [
        "--collection",
        str(coll_root),
        "--model",
        str(st_dirs["clip"]),
        "--text-model",
        str(st_dirs["text"]),
    ]
    out = CliRunner().invoke(main, ["search", *base, "ein rotes Bild", "--mode", "visual", "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)["results"]) == 10
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"query": "red", "relevant_ids": ["red/00", "red/01"]}) + "\n", encoding="utf-8"
    )
    ev = CliRunner().invoke(main, ["eval", *base, "--queries", str(queries), "--json", "--no-save"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout)["text_model"] == str(st_dirs["text"])


def test_serve_takes_text_model(st_dirs: dict[str, Path], coll_root: Path) -> None:
    """``illustra serve --text-model``: a real server on 127.0.0.1 answers text queries with the
    text model's vectors and names its languages in the notice."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    model, text = str(st_dirs["clip"]), str(st_dirs["text"])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "illustra",
            "serve",
            "--collection",
            str(coll_root),
            "--model",
            model,
            "--text-model",
            text,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/search",
                    params={"q": "eine rote Tafel", "k": 5, "mode": "visual"},
                    timeout=30,
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        assert r.status_code == 200, r.text
        body = r.json()
        expect = SearchService(coll_root, model, text_model=text).search_text(
            "eine rote Tafel", k=5, mode="visual"
        )
        assert [h["id"] for h in body["results"]] == [h.id for h in expect.results]
        assert any("en, de, fr, ja" in n for n in body["notices"])
    finally:
        proc.terminate()
        proc.wait(20)
