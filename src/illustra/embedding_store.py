"""Per-model embedding storage inside a collection: ``embeddings/<model-slug>/``.

Written in chunks so an interrupted run resumes without losing or duplicating work:
``chunks/<start>-<end>.npz`` holds the vectors and dataset row numbers for rows ``start..end``
(a chunk becomes visible only by an atomic rename, so a kill -9 leaves no half chunk).
``consolidate()`` then writes ``vectors.npy`` (float32, n x dim) and ``rows.npy`` (int64), which
readers memory-map. Each model gets its own folder: a second model never mixes with the first.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .collection import Collection, now_iso
from .encoders.base import model_slug
from .errors import ModelMismatch, NotEmbedded

_CHUNK_RE = re.compile(r"^(\d+)-(\d+)\.npz$")


class EmbeddingStore:
    def __init__(self, collection: Collection, model: str) -> None:
        self.collection = collection
        self.model = model
        self.dir = collection.root / "embeddings" / model_slug(model)
        self.chunk_dir = self.dir / "chunks"

    # -- reading --------------------------------------------------------------------------
    @property
    def entry(self) -> dict[str, Any]:
        return dict(self.collection.manifest.get("embeddings", {}).get(self.model, {}))

    @property
    def complete(self) -> bool:
        return bool(self.entry.get("complete")) and (self.dir / "vectors.npy").exists()

    @property
    def dim(self) -> int:
        return int(self.entry["dim"])

    def vectors(self) -> np.ndarray:
        self._require()
        return np.load(self.dir / "vectors.npy", mmap_mode="r")

    def rows(self) -> np.ndarray:
        self._require()
        return np.load(self.dir / "rows.npy")

    def _require(self) -> None:
        if not (self.dir / "vectors.npy").exists():
            raise NotEmbedded(
                f"{self.collection.root} has no embeddings for model {self.model!r}; run 'illustra embed'"
            )

    # -- writing (used by embed.py) -------------------------------------------------------
    def done_ranges(self) -> list[tuple[int, int]]:
        if not self.chunk_dir.is_dir():
            return []
        out = []
        for name in os.listdir(self.chunk_dir):
            m = _CHUNK_RE.match(name)
            if m:
                out.append((int(m.group(1)), int(m.group(2))))
        return sorted(out)

    def write_chunk(self, start: int, end: int, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Atomically record the vectors for dataset rows ``start..end`` (end exclusive)."""
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.chunk_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, rows=np.asarray(rows, dtype=np.int64), vectors=np.asarray(vectors, dtype=np.float32))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.chunk_dir / f"{start:010d}-{end:010d}.npz")

    def consolidate(self, dim: int, extra: dict[str, Any] | None = None) -> int:
        """Concatenate chunks (in row order, each row at most once) into vectors.npy / rows.npy."""
        ranges = self.done_ranges()
        total = 0
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        for s, e in ranges:
            with np.load(self.chunk_dir / f"{s:010d}-{e:010d}.npz") as z:
                parts.append((z["rows"], z["vectors"]))
                total += len(z["rows"])
        rows_out = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        order = np.argsort(rows_out, kind="stable")
        rows_out = rows_out[order]
        keep = np.ones(len(rows_out), dtype=bool)
        keep[1:] = rows_out[1:] != rows_out[:-1]
        vec_tmp = self.dir / "vectors.npy.tmp"
        mm = np.lib.format.open_memmap(vec_tmp, mode="w+", dtype=np.float32, shape=(int(keep.sum()), dim))
        # Copy part by part so peak memory stays around one chunk, not the whole matrix.
        offsets = np.cumsum([0] + [len(p[0]) for p in parts])
        dest_of = np.empty(len(order), dtype=np.int64)
        dest_of[order] = np.cumsum(keep) - 1
        keep_src = np.empty(len(order), dtype=bool)
        keep_src[order] = keep
        for i, (_, vecs) in enumerate(parts):
            lo, hi = offsets[i], offsets[i + 1]
            sel = keep_src[lo:hi]
            mm[dest_of[lo:hi][sel]] = vecs[sel]
        mm.flush()
        del mm
        rows_kept = rows_out[keep]
        np.save(self.dir / "rows.npy.tmp.npy", rows_kept)
        os.replace(self.dir / "rows.npy.tmp.npy", self.dir / "rows.npy")
        os.replace(vec_tmp, self.dir / "vectors.npy")
        entry = self.entry
        entry.update(
            {
                "model": self.model,
                "slug": model_slug(self.model),
                "dim": dim,
                "normalised": "l2",
                "count": int(len(rows_kept)),
                "complete": True,
                "updated": now_iso(),
            }
        )
        if extra:
            entry.update(extra)
        self.collection.update_manifest(embeddings={self.model: entry})
        return int(len(rows_kept))


def embedded_models(collection: Collection) -> list[str]:
    return [m for m, e in collection.manifest.get("embeddings", {}).items() if e.get("complete")]


def pick_model(collection: Collection, requested: str | None) -> str:
    """Which embedding to search: the requested model, else the collection's only/first one."""
    models = embedded_models(collection)
    if requested is not None:
        if requested not in models:
            if models:
                raise ModelMismatch(
                    f"{collection.root} was embedded with {', '.join(models)}, not {requested!r}; "
                    f"search with --model {models[0]} or run 'illustra embed --model {requested}'"
                )
            raise NotEmbedded(f"{collection.root} is not embedded yet; run 'illustra embed'")
        return requested
    if not models:
        raise NotEmbedded(f"{collection.root} is not embedded yet; run 'illustra embed'")
    return models[0]
