"""Per-model embedding storage inside a collection: ``embeddings/<model-slug>/``.

Written in chunks so an interrupted run resumes without losing or duplicating work:
``chunks/<start>-<end>.npz`` holds the vectors and dataset row numbers for rows ``start..end``
(a chunk becomes visible only by an atomic link, so a kill -9 leaves no half chunk), plus the rows
in that range whose image could not be embedded and why (listed in ``skipped.tsv``).
``consolidate()`` then writes ``vectors.npy`` (float32, n x dim) and ``rows.npy`` (int64), which
readers memory-map, and folds the chunks it read: each keeps its rows and skip list but drops its
vectors, which now live in ``vectors.npy`` (a million 1152-d vectors are not kept twice on disk).
A journal (``consolidating.json``) makes that step all-or-nothing: a run killed inside it is
finished by the next reader. Each model gets its own folder: a second model never mixes with the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .collection import Collection, now_iso, write_json_atomic
from .encoders.base import model_slug
from .errors import CollectionError, ModelMismatch, NotEmbedded

_CHUNK_RE = re.compile(r"^(\d+)-(\d+)(?:\.(\d+))?\.npz$")
JOURNAL = "consolidating.json"
# Temporary names of the consolidated files, each renamed into place when the journal says so.
_PENDING = (("vectors.npy.tmp", "vectors.npy"), ("rows.npy.tmp.npy", "rows.npy"))


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
        if (self.dir / JOURNAL).exists():
            with contextlib.suppress(OSError):  # a read-only reader leaves it to the next writer
                self.finish_pending()
        if not (self.dir / "vectors.npy").exists():
            raise NotEmbedded(
                f"{self.collection.root} has no embeddings for model {self.model!r}; run 'illustra embed'"
            )

    # -- writing (used by embed.py) -------------------------------------------------------
    def chunk_paths(self) -> list[Path]:
        """Chunk files in row order. A range embedded again later (rows that gained an image)
        gets a second file ``<start>-<end>.<n>.npz`` rather than replacing the first."""
        self.finish_pending()
        if not self.chunk_dir.is_dir():
            return []
        found = []
        for name in os.listdir(self.chunk_dir):
            m = _CHUNK_RE.match(name)
            if m:
                found.append(
                    ((int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)), self.chunk_dir / name)
                )
        return [p for _, p in sorted(found)]

    def done_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Dataset rows the chunks hold a vector for, and rows they record as skipped."""
        embedded: list[np.ndarray] = []
        skipped: list[np.ndarray] = []
        for p in self.chunk_paths():
            with np.load(p) as z:
                embedded.append(z["rows"])
                if "skipped_rows" in z.files:
                    skipped.append(z["skipped_rows"])
        empty = np.zeros(0, np.int64)
        return (
            np.concatenate(embedded).astype(np.int64) if embedded else empty,
            np.concatenate(skipped).astype(np.int64) if skipped else empty,
        )

    def write_chunk(
        self,
        start: int,
        end: int,
        rows: np.ndarray,
        vectors: np.ndarray,
        skipped: list[tuple[int, str, str]] | None = None,
    ) -> None:
        """Atomically record the vectors for dataset rows ``start..end`` (end exclusive).

        ``skipped`` lists (row, item id, reason) for images in the range that could not be
        embedded; they travel in the same file, so a resumed run neither retries nor forgets them.
        An existing chunk for the same range is never overwritten (the new one gets a suffix).
        """
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        skipped = skipped or []
        fd, tmp = tempfile.mkstemp(dir=self.chunk_dir, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    rows=np.asarray(rows, dtype=np.int64),
                    vectors=np.asarray(vectors, dtype=np.float32),
                    skipped_rows=np.asarray([s[0] for s in skipped], dtype=np.int64),
                    skipped_ids=np.asarray([s[1] for s in skipped], dtype=np.str_),
                    skipped_reasons=np.asarray([s[2] for s in skipped], dtype=np.str_),
                )
                fh.flush()
                os.fsync(fh.fileno())
            part = 0
            while True:
                suffix = f".{part}" if part else ""
                try:
                    # link() refuses to replace an existing name, so two writers never clobber a chunk.
                    os.link(tmp, self.chunk_dir / f"{start:010d}-{end:010d}{suffix}.npz")
                    break
                except FileExistsError:
                    part += 1
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def chunk_dim(self) -> int | None:
        """Vector width of the chunks already written (None when there are none or none hold vectors)."""
        for p in self.chunk_paths():
            with np.load(p) as z:
                vecs = z["vectors"]
                if vecs.ndim == 2 and (len(vecs) or "folded" in z.files):
                    return int(vecs.shape[1])
        return None

    def skipped(self) -> list[tuple[str, str]]:
        """(item id, reason) for every image recorded as skipped and not embedded since, in row order."""
        embedded, _ = self.done_rows()
        have = set(embedded.tolist())
        out: dict[int, tuple[str, str]] = {}
        for p in self.chunk_paths():
            with np.load(p) as z:
                if "skipped_rows" not in z.files:
                    continue
                for row, item_id, reason in zip(
                    z["skipped_rows"].tolist(),
                    z["skipped_ids"].tolist(),
                    z["skipped_reasons"].tolist(),
                    strict=True,
                ):
                    if row not in have:
                        out.setdefault(int(row), (str(item_id), str(reason)))
        return [out[r] for r in sorted(out)]

    @property
    def skipped_path(self) -> Path:
        return self.dir / "skipped.tsv"

    def write_skipped(self) -> int:
        """Rewrite ``skipped.tsv`` (id, reason) from the chunks; returns how many images it lists."""
        items = self.skipped()
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix="skipped.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("id\treason\n")
            for item_id, reason in items:
                # One line per item: tabs and newlines inside an id or reason would break the table.
                fh.write(" ".join(item_id.split()) + "\t" + " ".join(reason.split()) + "\n")
        os.replace(tmp, self.skipped_path)
        return len(items)

    def finish_pending(self) -> None:
        """Complete a consolidation that was killed after its files were written: rename them
        into place and fold the chunks it read (both steps are safe to repeat)."""
        journal = self.dir / JOURNAL
        if not journal.is_file():
            return
        try:
            names = list(json.loads(journal.read_text(encoding="utf-8"))["chunks"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CollectionError(f"{journal} is unreadable ({exc}); delete {self.dir} and embed again") from None
        for tmp, final in _PENDING:
            if (self.dir / tmp).exists():
                os.replace(self.dir / tmp, self.dir / final)
        for name in names:
            path = self.chunk_dir / name
            if path.exists():
                self._fold(path)
        journal.unlink()

    def _fold(self, path: Path) -> None:
        """Rewrite a chunk without its vectors (consolidated into vectors.npy), keeping its rows,
        its skip list and its width."""
        with np.load(path) as z:
            if "folded" in z.files:
                return
            kept = {k: z[k] for k in z.files if k != "vectors"}
            width = z["vectors"].shape[1] if z["vectors"].ndim == 2 else 0
        fd, tmp = tempfile.mkstemp(dir=self.chunk_dir, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, vectors=np.zeros((0, width), np.float32), folded=np.asarray(True), **kept)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @staticmethod
    def _from_base(path: Path, rows: np.ndarray, base_rows: Any, base_vecs: Any) -> np.ndarray:
        pos = np.searchsorted(base_rows, rows)
        if len(rows) and (pos.max() >= len(base_rows) or not np.array_equal(base_rows[pos], rows)):
            raise CollectionError(
                f"{path.name}: its vectors were consolidated but vectors.npy lacks some of its rows; "
                f"delete {path.parent.parent} and run 'illustra embed' again"
            )
        return np.asarray(base_vecs[pos], dtype=np.float32)

    def consolidate(self, dim: int, extra: dict[str, Any] | None = None) -> int:
        """Concatenate chunks (in row order, each row at most once) into vectors.npy / rows.npy,
        then fold the chunks: their vectors are dropped, as vectors.npy holds them."""
        paths = self.chunk_paths()
        row_parts: list[np.ndarray] = []
        folded: list[bool] = []
        for p in paths:
            with np.load(p) as z:
                row_parts.append(z["rows"].astype(np.int64))
                folded.append("folded" in z.files)
        base_rows = base_vecs = None
        if any(folded):
            # Folded chunks' vectors are in the current vectors.npy, found by row.
            base_rows, base_vecs = np.load(self.dir / "rows.npy"), np.load(self.dir / "vectors.npy", mmap_mode="r")
        rows_out = np.concatenate(row_parts) if row_parts else np.zeros(0, np.int64)
        order = np.argsort(rows_out, kind="stable")
        rows_out = rows_out[order]
        keep = np.ones(len(rows_out), dtype=bool)
        keep[1:] = rows_out[1:] != rows_out[:-1]
        self.dir.mkdir(parents=True, exist_ok=True)
        vec_tmp = self.dir / _PENDING[0][0]
        mm = np.lib.format.open_memmap(vec_tmp, mode="w+", dtype=np.float32, shape=(int(keep.sum()), dim))
        # Copy chunk by chunk (vectors loaded one file at a time) so peak memory stays around one chunk.
        offsets = np.cumsum([0] + [len(r) for r in row_parts])
        dest_of = np.empty(len(order), dtype=np.int64)
        dest_of[order] = np.cumsum(keep) - 1
        keep_src = np.empty(len(order), dtype=bool)
        keep_src[order] = keep
        for i, p in enumerate(paths):
            lo, hi = offsets[i], offsets[i + 1]
            if hi == lo:
                continue
            if folded[i]:
                vecs = self._from_base(p, row_parts[i], base_rows, base_vecs)
            else:
                with np.load(p) as z:
                    vecs = z["vectors"]
            if vecs.ndim != 2 or vecs.shape[1] != dim:
                raise ModelMismatch(
                    f"{p} holds {vecs.shape[-1]}-dimensional vectors, not {dim}; "
                    f"delete {self.dir} and run 'illustra embed' again"
                )
            sel = keep_src[lo:hi]
            mm[dest_of[lo:hi][sel]] = vecs[sel]
        mm.flush()
        del mm, base_vecs
        rows_kept = rows_out[keep]
        np.save(self.dir / _PENDING[1][0], rows_kept)
        # The journal is the commit point: from here the next reader finishes the job if this one dies.
        write_json_atomic(self.dir / JOURNAL, {"chunks": [p.name for p in paths]})
        self.finish_pending()
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


def embedded_models(collection: Collection, *, searchable_only: bool = False) -> list[str]:
    """Models with complete embeddings; ``searchable_only`` leaves out picture-only companion
    spaces (they answer picture queries for another model, never text)."""
    return [
        m
        for m, e in collection.manifest.get("embeddings", {}).items()
        if e.get("complete") and not (searchable_only and e.get("image_only"))
    ]


def similarity_companion(collection: Collection, model: str) -> str | None:
    """The complete picture-only embedding recorded as the companion of ``model``, if any."""
    for m, e in collection.manifest.get("embeddings", {}).items():
        if e.get("complete") and e.get("image_only") and e.get("similarity_for") == model:
            return m
    return None


def pick_model(collection: Collection, requested: str | None) -> str:
    """Which embedding to search: the requested model, else the collection's only/first one."""
    models = embedded_models(collection, searchable_only=requested is None)
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
    from .adapters import preferred

    return preferred(collection, models[0])  # its adapter, where that beat it on held-out items
