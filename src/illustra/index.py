"""FAISS index over a collection's normalised vectors (inner product = cosine).

Exact (``flat``) up to ``exact_index_max`` vectors; above that ``hnsw`` (graph, fast, in RAM) — or
``ivfpq`` (compressed, for collections whose vectors don't fit in RAM), chosen by size or by the user.
Approximate results are re-ranked with the exact vectors, so scores are true cosines.
Saved beside the collection in ``index/<model-slug>/`` with ``index.json`` naming the model.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import settings
from .collection import Collection, now_iso, write_json_atomic
from .embedding_store import EmbeddingStore
from .encoders.base import model_slug
from .errors import BadInput, IndexMissing, ModelMismatch

KINDS = ("flat", "hnsw", "ivfpq")
# Above this many vectors HNSW's in-RAM graph (~ (d*4 + 64*4) bytes/vector) gets heavy: compress.
IVFPQ_ABOVE = 5_000_000
# Filters that leave at most this many candidates are answered exactly over the subset.
SUBSET_EXACT_MAX = 4_000


def _faiss() -> Any:
    # Imported lazily (slow import) and typed loosely: faiss's bundled stubs lag its SWIG API.
    import faiss

    return faiss


def choose_kind(n: int) -> str:
    if n <= int(settings.get("exact_index_max")):
        return "flat"
    return "hnsw" if n <= IVFPQ_ABOVE else "ivfpq"


def index_dir(collection: Collection, model: str) -> Path:
    return collection.root / "index" / model_slug(model)


def _pq_m(d: int) -> int:
    for m in (64, 48, 32, 24, 16, 12, 8, 4, 2, 1):
        if d % m == 0 and d // m >= 4:
            return m
    return 1


def build_index(
    collection: Collection, model: str, kind: str | None = None, *, batch: int = 50_000
) -> dict[str, Any]:
    faiss = _faiss()

    store = EmbeddingStore(collection, model)
    vecs = store.vectors()
    n, d = vecs.shape
    if n == 0:
        raise IndexMissing(f"{collection.root} has no embedded images for model {model!r}; nothing to index")
    kind = kind or choose_kind(n)
    if kind not in KINDS:
        raise BadInput(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    started = time.perf_counter()
    params: dict[str, Any] = {}
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        params = {"M": 32, "efConstruction": 80, "efSearch": 128}
        index = faiss.IndexHNSWFlat(d, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["efConstruction"]
    else:
        nlist = int(max(16, min(65536, 4 * np.sqrt(n))))
        m = _pq_m(d)
        params = {"nlist": nlist, "m": m, "nbits": 8, "nprobe": min(nlist, 32)}
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(n, size=min(n, max(nlist * 40, 20_000)), replace=False))
        index.train(np.ascontiguousarray(vecs[sample], dtype=np.float32))
    for start in range(0, n, batch):
        index.add(np.ascontiguousarray(vecs[start : start + batch], dtype=np.float32))
    out = index_dir(collection, model)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "index.faiss.tmp"
    faiss.write_index(index, str(tmp))
    os.replace(tmp, out / "index.faiss")
    info = {
        "model": model,
        "dim": d,
        "kind": kind,
        "count": n,
        "params": params,
        "built": now_iso(),
        "build_seconds": round(time.perf_counter() - started, 3),
    }
    write_json_atomic(out / "index.json", info)
    collection.update_manifest(indexes={model: info})
    return info


@dataclass
class VectorIndex:
    """A loaded index plus the vectors it was built from (memory-mapped, for exact re-ranking)."""

    model: str
    kind: str
    dim: int
    index: Any
    vectors: np.ndarray  # (n, d) float32, memory-mapped
    rows: np.ndarray  # (n,) dataset row of each vector, sorted ascending
    params: dict[str, Any]

    def __len__(self) -> int:
        return len(self.rows)

    def position_of_row(self, row: int) -> int | None:
        pos = int(np.searchsorted(self.rows, row))
        if pos < len(self.rows) and self.rows[pos] == row:
            return pos
        return None

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, positions) for one query vector; ``allowed`` masks vector positions."""
        faiss = _faiss()

        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        n = len(self.rows)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if allowed is not None:
            cand = np.flatnonzero(allowed)
            if len(cand) == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            if len(cand) <= SUBSET_EXACT_MAX:
                return _topk(np.asarray(self.vectors[cand]) @ q[0], cand, k)
        # Approximate indexes fetch extra candidates, then re-rank them with the exact vectors.
        fetch = k if self.kind == "flat" else max(k * 4, 40)
        fetch = min(fetch, n)
        params = None
        sel = None
        if allowed is not None:
            bits = np.packbits(allowed.astype(np.uint8), bitorder="little")
            sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        if self.kind == "hnsw":
            ef = max(int(self.params.get("efSearch", 128)), fetch)
            if allowed is not None:
                # A selective filter prunes most of the graph walk: widen the beam to keep recall.
                share = max(float(allowed.mean()), 1e-6)
                ef = int(min(4096, ef / min(1.0, share * 4)))
            params = faiss.SearchParametersHNSW(efSearch=ef)
            if sel is not None:
                params.sel = sel
        elif self.kind == "ivfpq":
            params = faiss.SearchParametersIVF(nprobe=int(self.params.get("nprobe", 32)))
            if sel is not None:
                params.sel = sel
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel)
        while True:
            scores, ids = self.index.search(q, fetch, params=params) if params is not None else self.index.search(q, fetch)
            got_scores, ids = scores[0], ids[0]
            got_scores, ids = got_scores[ids >= 0], ids[ids >= 0].astype(np.int64)
            if self.kind != "flat":
                ids = np.sort(ids)
                got_scores = np.asarray(self.vectors[ids]) @ q[0]
            # Equal scores (duplicate images) must not make paging unstable: if the k-th score is
            # tied with the last fetched one, fetch deeper so the tie is broken by position.
            if len(ids) < fetch or fetch >= n or len(ids) < k:
                break
            kth = np.partition(-got_scores, k - 1)[k - 1]
            if -got_scores.min() > kth:
                break
            fetch = min(n, fetch * 4)
        return _topk(got_scores, ids, k)


def _topk(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` by score, ties broken by position, so the order never depends on ``k``."""
    k = min(k, len(scores))
    if k == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    if k < len(scores):
        kth = np.partition(-scores, k - 1)[k - 1]
        keep = np.flatnonzero(-scores <= kth)
    else:
        keep = np.arange(len(scores))
    order = keep[np.lexsort((positions[keep], -scores[keep]))][:k]
    return scores[order].astype(np.float32), positions[order].astype(np.int64)


def load_index(collection: Collection, model: str) -> VectorIndex:
    faiss = _faiss()

    d = index_dir(collection, model)
    meta_path = d / "index.json"
    if not (d / "index.faiss").exists() or not meta_path.exists():
        raise IndexMissing(f"{collection.root} has no index for model {model!r}; run 'illustra index'")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("model") != model:
        raise ModelMismatch(f"the index in {d} was built with {meta.get('model')!r}, not {model!r}")
    store = EmbeddingStore(collection, model)
    vectors = store.vectors()
    rows = store.rows()
    if int(meta.get("count", -1)) != len(rows):
        raise IndexMissing(
            f"the index for {model!r} covers {meta.get('count')} items but {len(rows)} are embedded; "
            "run 'illustra index' again"
        )
    try:
        index = faiss.read_index(str(d / "index.faiss"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        index = faiss.read_index(str(d / "index.faiss"))
    return VectorIndex(
        model=model,
        kind=str(meta["kind"]),
        dim=int(meta["dim"]),
        index=index,
        vectors=vectors,
        rows=rows,
        params=dict(meta.get("params", {})),
    )
