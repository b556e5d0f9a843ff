"""When the configured Hub model is not available and the Hub cannot be reached, Illustra says so in
one line and uses the offline ``lite`` encoder — never silently, never with a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from illustra.encoders import load_encoder
from illustra.errors import ModelUnavailable

MISSING = "illustra-test/no-such-clip-model"


def test_default_model_falls_back_to_lite_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ILLUSTRA_MODEL", MISSING)
    said: list[str] = []
    enc = load_encoder(None, notify=said.append)
    assert enc.name == "lite" and enc.dim == 384
    assert len(said) == 1 and "\n" not in said[0]
    assert MISSING in said[0] and "lite" in said[0]


def test_explicit_model_is_never_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="--model"):
        load_encoder(MISSING)


def test_cli_embed_falls_back_and_records_lite(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    for i, rgb in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        Image.new("RGB", (64, 48), rgb).save(pics / f"p{i}.png")
    coll = tmp_path / "coll"
    env = dict(os.environ, HF_HUB_OFFLINE="1", ILLUSTRA_MODEL=MISSING, ILLUSTRA_TORCH_THREADS="1")
    cli = [sys.executable, "-m", "illustra"]
    subprocess.run(
        [*cli, "ingest", "folder", str(pics), "--collection", str(coll)],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    proc = subprocess.run(
        [*cli, "embed", "--collection", str(coll), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    notices = [line for line in proc.stderr.splitlines() if MISSING in line]
    assert len(notices) == 1 and "lite" in notices[0]
    manifest = json.loads((coll / "manifest.json").read_text())
    assert manifest["embeddings"]["lite"]["count"] == 3
    # lite brings its picture-only space for "more like this"; it never becomes the default model.
    assert manifest["embeddings"]["lite-visual"]["image_only"] is True
    assert set(manifest["embeddings"]) == {"lite", "lite-visual"}
