from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from illustra.cli import main
from illustra.collection import Collection

PACKAGE = Path("/usr/share/openclipart")
needs_package = pytest.mark.skipif(
    not (PACKAGE / "png").is_dir() or not (PACKAGE / "svg").is_dir(),
    reason="Debian openclipart-png/svg not installed",
)
LIMIT = 24


def _stamps(root: Path) -> dict[str, object]:
    m = Collection(root).manifest
    [src] = [s for s in m["sources"] if s["kind"] == "openclipart"]
    return {
        "ingested": src["ingested"],
        "embedded": m["embeddings"]["lite"]["updated"],
        "indexed": m["indexes"]["lite"]["built"],
        "text_indexed": m["text_index"]["built"],
        "vectors_mtime": (root / "embeddings" / "lite" / "vectors.npy").stat().st_mtime_ns,
        "data": sorted(p.name for p in (root / "data").iterdir()),
    }


def _demo(root: Path):
    args = ["demo", "--collection", str(root), "--no-serve", "--limit", str(LIMIT), "--model", "lite"]
    return CliRunner().invoke(main, args)


@needs_package
@pytest.mark.slow
def test_demo_builds_then_reuses_every_stage(tmp_path):
    root = tmp_path / "demo"
    first = _demo(root)
    assert first.exit_code == 0, first.output
    for stage in ("ingest", "embed", "index", "similar", "text"):
        assert any(line.split()[:2] == [stage, "built"] for line in first.stdout.splitlines()), first.stdout
    assert '"a cat"' in first.stdout and "  1. " in first.stdout
    assert first.stdout.rstrip().endswith(f"collection: {root}")
    coll = Collection(root)
    [src] = [s for s in coll.manifest["sources"] if s["kind"] == "openclipart"]
    assert src["complete"] and src["limit"] == LIMIT
    assert src["added"] + sum(src["image_failures"].values()) == LIMIT
    assert coll.manifest["embeddings"]["lite"]["count"] == len(coll)
    # The picture-only companion space answers "more like this".
    assert coll.manifest["embeddings"]["lite-visual"]["image_only"] is True
    assert coll.manifest["indexes"]["lite-visual"]["dim"] == 1280
    before = _stamps(root)

    second = _demo(root)
    assert second.exit_code == 0, second.output
    assert "everything was already built; nothing was redone" in second.stdout
    for stage in ("ingest", "embed", "index", "similar", "text"):
        assert any(line.split()[:2] == [stage, "reused"] for line in second.stdout.splitlines())
    assert _stamps(root) == before  # nothing was re-ingested, re-embedded or re-indexed

    # A lost index (as after an interrupted run) is rebuilt without redoing the earlier stages.
    shutil.rmtree(root / "index")
    third = _demo(root)
    assert third.exit_code == 0, third.output
    assert any(line.split()[:2] == ["index", "built"] for line in third.stdout.splitlines())
    after = _stamps(root)
    kept = ("ingested", "embedded", "vectors_mtime", "text_indexed")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert any(line.split()[:2] == ["text", "reused"] for line in third.stdout.splitlines())


def _missing_package_env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("ILLUSTRA_OPENCLIPART_DIR", str(tmp_path / "no-such-package"))
    monkeypatch.setenv("ILLUSTRA_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "demo-openclipart"


def test_demo_without_packages_says_how_to_install(tmp_path, monkeypatch):
    default_dir = _missing_package_env(tmp_path, monkeypatch)
    res = CliRunner().invoke(main, ["demo", "--no-serve", "--no-install"])
    assert res.exit_code != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: Open Clip Art is not installed")
    assert lines[0].endswith("run: sudo apt-get install -y openclipart-png openclipart-svg")
    assert not default_dir.exists()  # nothing was written


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the demo installs the packages itself")
def test_demo_as_normal_user_never_tries_to_install(tmp_path, monkeypatch):
    _missing_package_env(tmp_path, monkeypatch)
    res = CliRunner().invoke(main, ["demo", "--no-serve"])
    assert res.exit_code != 0 and "sudo apt-get install -y openclipart-png openclipart-svg" in res.stderr
