"""The whole pipeline through the installed ``illustra`` command, as a user runs it:
ingest a folder -> embed with a (tiny, offline) CLIP model -> index -> search three ways."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from . import tiny_clip

tiny_clip_dir = tiny_clip.tiny_clip_dir

ILLUSTRA = [sys.executable, "-m", "illustra"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", ILLUSTRA_TORCH_THREADS="1")
    proc = subprocess.run([*ILLUSTRA, *args], capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"illustra {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


@pytest.fixture
def folder(tmp_path: Path, hostile_dir: Path) -> Path:
    src = tmp_path / "pictures"
    (src / "plates").mkdir(parents=True)
    colours = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}
    lines = ["file_name,title,date,place"]
    for i, (name, rgb) in enumerate(colours.items()):
        for j in range(3):
            # A colour wash with a seeded speckle pattern: each file is a distinct picture.
            rng = np.random.default_rng(i * 10 + j)
            arr = np.clip(np.array(rgb) + rng.integers(-60, 60, (48, 64, 3)), 0, 255).astype("uint8")
            Image.fromarray(arr).save(src / "plates" / f"{name}{j}.png")
            lines.append(f"plates/{name}{j}.png,A {name} plate,{1850 + i * 10 + j},London")
    (src / "metadata.csv").write_text("\n".join(lines) + "\n")
    shutil.copy(hostile_dir / "bad_truncated.jpg", src / "broken.jpg")
    return src


def test_ingest_embed_index_search(folder: Path, tmp_path: Path, tiny_clip_dir: Path) -> None:
    coll = str(tmp_path / "coll")
    out = run("ingest", "folder", str(folder), "--collection", coll)
    assert "9 added" in (out.stdout + out.stderr)
    run("embed", "--collection", coll, "--model", str(tiny_clip_dir))
    run("index", "--collection", coll)

    info = json.loads(run("info", "--collection", coll, "--json").stdout)
    assert info["counts"]["items"] == 9
    assert info["embeddings"][str(tiny_clip_dir)]["dim"] == 16

    text = json.loads(run("search", "--collection", coll, "a red plate", "-k", "4", "--json").stdout)
    assert len(text["results"]) == 4
    assert all({"id", "score", "metadata"} <= set(r) for r in text["results"])
    scores = [r["score"] for r in text["results"]]
    assert scores == sorted(scores, reverse=True)

    # The same picture as a query finds itself first (query embedding = indexing code path).
    by_image = json.loads(
        run("search", "--collection", coll, "--image", str(folder / "plates" / "green1.png"), "--json").stdout
    )
    assert by_image["results"][0]["id"] == "plates/green1"
    assert by_image["results"][0]["score"] > 0.99

    like = json.loads(run("search", "--collection", coll, "--like", "plates/blue0", "-k", "8", "--json").stdout)
    assert "plates/blue0" not in [r["id"] for r in like["results"]]
    assert len(like["results"]) == 8

    years = json.loads(
        run("search", "--collection", coll, "a plate", "--year-from", "1860", "--year-to", "1862", "--json").stdout
    )
    assert sorted(r["metadata"]["year"] for r in years["results"]) == [1860, 1861, 1862]

    table = run("search", "--collection", coll, "a blue plate", "-k", "2").stdout
    assert "plates/" in table and "rank" in table


def test_wrong_model_and_missing_collection_are_one_line_errors(
    folder: Path, tmp_path: Path, tiny_clip_dir: Path
) -> None:
    coll = str(tmp_path / "coll")
    run("ingest", "folder", str(folder), "--collection", coll)
    not_yet = run("search", "--collection", coll, "red", check=False)
    assert not_yet.returncode != 0 and "illustra embed" in not_yet.stderr
    assert "Traceback" not in not_yet.stderr and len(not_yet.stderr.strip().splitlines()) == 1
    run("embed", "--collection", coll, "--model", str(tiny_clip_dir))
    no_index = run("search", "--collection", coll, "red", check=False)
    assert no_index.returncode != 0 and "illustra index" in no_index.stderr
    run("index", "--collection", coll)
    other = run("search", "--collection", coll, "red", "--model", "lite", check=False)
    assert other.returncode == 5 and "embedded with" in other.stderr
    missing = run("search", "--collection", str(tmp_path / "nowhere"), "red", check=False)
    assert missing.returncode == 3 and len(missing.stderr.strip().splitlines()) == 1
