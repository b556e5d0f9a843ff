from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from illustra.cli import main
from illustra.collection import Collection

SVG = (
    '<?xml version="1.0" encoding="UTF-8"?><svg xmlns="http://www.w3.org/2000/svg" '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:cc="http://web.resource.org/cc/" width="10" height="10"><metadata><rdf:RDF><cc:Work>'
    "<dc:title>{title}</dc:title><dc:subject><rdf:Bag><rdf:li>{keyword}</rdf:li></rdf:Bag></dc:subject>"
    "</cc:Work></rdf:RDF></metadata></svg>"
)
# (id, title as written in the SVG, keyword, colour): laid out like the Debian packages.
ITEMS = [
    ("animals/mammals/red_cat_01", "A red cat", "cat", (200, 30, 30)),
    ("animals/birds/blue_bird_01", "A blue bird", "bird", (30, 30, 200)),
    ("food/gelato_01", "Gelato all&amp;#39;italiana", "ice cream", (240, 220, 180)),
    ("food/green_apple_01", "A green apple", "apple", (30, 180, 30)),
    ("transportation/ship_01", "A sailing ship", "ship", (90, 60, 30)),
    ("geography/world_map_01", "A map of the world", "map", (60, 140, 200)),
]


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny Open Clip Art installation (png/ and svg/ as the Debian packages lay them out),
    found through the openclipart_dir setting."""
    pkg = tmp_path / "openclipart"
    for i, (item, title, keyword, colour) in enumerate(ITEMS):
        im = Image.new("RGBA", (96, 80), (0, 0, 0, 0))
        ImageDraw.Draw(im).ellipse((10 + i, 10, 80, 70), fill=(*colour, 255))
        (pkg / "png" / item).parent.mkdir(parents=True, exist_ok=True)
        im.save(pkg / "png" / f"{item}.png")
        (pkg / "svg" / item).parent.mkdir(parents=True, exist_ok=True)
        (pkg / "svg" / f"{item}.svg").write_text(SVG.format(title=title, keyword=keyword), encoding="utf-8")
    monkeypatch.setenv("ILLUSTRA_OPENCLIPART_DIR", str(pkg))
    return pkg


def _stamps(root: Path) -> dict[str, object]:
    m = Collection(root).manifest
    return {
        "sources": len(m["sources"]),
        "embedded": m["embeddings"]["lite"]["updated"],
        "indexed": m["indexes"]["lite"]["built"],
        "text_indexed": m["text_index"]["built"],
        "vectors_mtime": (root / "embeddings" / "lite" / "vectors.npy").stat().st_mtime_ns,
        "data": sorted(p.name for p in (root / "data").iterdir()),
    }


def _demo(root: Path):
    return CliRunner().invoke(main, ["demo", "--collection", str(root), "--no-serve", "--model", "lite"])


def _status(output: str) -> dict[str, str]:
    stages = ("packages", "ingest", "embed", "similar", "index", "text")
    return {w[0]: w[1] for w in (line.split() for line in output.splitlines()) if w[:1] and w[0] in stages}


@pytest.mark.slow
def test_demo_builds_then_reuses_every_stage(package, tmp_path):
    root = tmp_path / "demo"
    first = _demo(root)
    assert first.exit_code == 0, first.output
    assert _status(first.stdout) == {
        "packages": "reused",
        "ingest": "built",
        "embed": "built",
        "similar": "built",
        "index": "built",
        "text": "built",
    }
    assert '"a cat"' in first.stdout and "  1. " in first.stdout
    assert first.stdout.rstrip().endswith(f"collection: {root}")
    coll = Collection(root)
    [src] = [s for s in coll.manifest["sources"] if s["kind"] == "openclipart"]
    assert src["complete"] and src["limit"] is None and src["added"] == src["selected"] == len(ITEMS)
    assert coll.manifest["embeddings"]["lite"]["count"] == len(coll) == len(ITEMS)
    # HTML character references in the package's metadata are shown as what they stand for.
    assert coll.metadata(coll.row_of("food/gelato_01"))["title"] == "Gelato all'italiana"
    # The picture-only companion space answers "more like this".
    assert coll.manifest["embeddings"]["lite-visual"]["image_only"] is True
    assert coll.manifest["indexes"]["lite-visual"]["dim"] == 1280
    before = _stamps(root)

    second = _demo(root)
    assert second.exit_code == 0, second.output
    assert "everything was already built; nothing was redone" in second.stdout
    assert set(_status(second.stdout).values()) == {"reused"}
    assert _stamps(root) == before  # nothing was re-ingested, re-embedded or re-indexed

    # A lost index (as after an interrupted run) is rebuilt without redoing the earlier stages.
    shutil.rmtree(root / "index")
    third = _demo(root)
    assert third.exit_code == 0, third.output
    assert _status(third.stdout) == {**_status(second.stdout), "index": "built"}
    after = _stamps(root)
    kept = ("sources", "embedded", "vectors_mtime", "text_indexed")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}


def test_demo_without_packages_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("ILLUSTRA_OPENCLIPART_DIR", str(tmp_path / "no-such-package"))
    monkeypatch.setenv("ILLUSTRA_DATA_DIR", str(tmp_path / "data"))
    default_dir = tmp_path / "data" / "demo-openclipart"
    # The demo installs nothing, whoever runs it (root included): it never starts a process.
    started: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        started.append(args)
        raise AssertionError(f"the demo started a process: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    for args in (["demo", "--no-serve"], ["demo", "--no-serve", "--no-install"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code != 0
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert lines[0].startswith("error: Open Clip Art is not installed")
        assert lines[0].endswith("run: sudo apt-get install -y openclipart-png openclipart-svg")
    assert not started
    assert not default_dir.exists()  # nothing was written
