"""Data the benchmarks read from outside the repository, checked before any work starts.

A benchmark whose data is missing stops with one line naming what is missing and a non-zero exit
status: figures computed from stand-in data would look real and mean nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BL_MANIFEST = SHARED / "data" / "bl_flickr" / "bl_flickr_manifest_500k.tsv.gz"
OPENCLIPART_QUERIES = SHARED / "bench" / "openclipart" / "dev_queries.jsonl"
OPENCLIPART_PNG = Path("/usr/share/openclipart/png")


def _stop(path: Path, what: str) -> None:
    sys.exit(f"{Path(sys.argv[0]).name}: missing {what}: {path}")


def need_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or exit with status 1 and one line saying what is missing."""
    p = Path(path)
    if not p.is_file():
        _stop(p, what)
    return p


def need_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is a non-empty directory, or exit with status 1 and one line."""
    p = Path(path)
    if not p.is_dir() or not any(p.iterdir()):
        _stop(p, what)
    return p


def need_bl_manifest() -> Path:
    return need_file(BL_MANIFEST, "the BL Flickr manifest (real titles, authors, places and years)")


def need_openclipart_queries(path: str | Path = OPENCLIPART_QUERIES) -> Path:
    return need_file(path, "the Open Clip Art judged queries")
