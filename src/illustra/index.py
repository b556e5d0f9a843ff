"""FAISS index over a collection's normalised vectors (inner product = cosine).

The kind follows the collection's size and a memory budget (``index_memory_budget``, or
``illustra index --memory-budget``): exact ``flat`` up to ``exact_index_max`` vectors, then
``hnsw`` (graph over float32 vectors, fast, in RAM) while it fits the budget, then ``ivfsq``
(inverted lists of 8- or 4-bit scalar-quantised vectors) and, for the tightest budgets, ``ivfpq``
(product-quantised codes). Every approximate kind fetches extra candidates and re-ranks them with
the exact float32 vectors, which stay memory-mapped on disk, so scores are true cosines and the
budget covers only what the index holds in memory. Saved beside the collection in
``index/<model-slug>/``; ``index.json`` names the model, the kind and its parameters, the budget,
and the estimated and measured bytes.
"""

from __future__ import annotations

import json
import math
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
from .settings import format_size, parse_size
from .vector_reader import VectorReader

KINDS = ("flat", "hnsw", "ivfsq", "ivfpq")
# Above this many vectors the HNSW graph is not built even when it would fit the budget.
IVFPQ_ABOVE = 5_000_000
# Filters that leave at most this many candidates are answered exactly over the subset.
SUBSET_EXACT_MAX = 4_000
HNSW_PARAMS = {"M": 32, "efConstruction": 80, "efSearch": 128, "rerank": 40}
# Scalar quantisers of ``ivfsq``, best first, with their code bytes per dimension.
SQ_TYPES = {"SQ8": 1.0, "SQ4": 0.5}
# Candidates re-ranked with the exact vectors per query (at least 4 x k): coarser codes need more.
RERANK = {"SQ8": 40, "SQ4": 100, "PQ": 200}
PQ_MS = (64, 48, 32, 24, 16, 12, 8, 4, 2, 1)
ID_BYTES = 8  # an inverted list stores an int64 id beside each code; rows.npy holds one per vector
# A filter is answered by searching without it for k / share x POSTFILTER_SAFETY candidates and
# keeping the allowed ones when that is estimated cheaper than probing through the filter; a
# post-filter never fetches more than POSTFILTER_MAX_FETCH candidates (nor more than a quarter of
# what the probed lists hold), and falls back to the filtered path when fewer than k survive.
POSTFILTER_SAFETY = 2.0
POST_HNSW_BEAM = 3
POSTFILTER_MAX_FETCH = 4096
# Relative costs per vector, in units of one quantised-code distance: testing a filter bit while
# probing through the filter, and an exact float32 distance over a gathered (memory-mapped) subset.
# Measured in CPU time at 1.08M x 1152-d (SQ8): a code distance 0.36 us, a filter test under 10 ns
# while scanning lists, an exact distance 1.6-1.9 us (a scattered 4.6 KB read each).
SELECTOR_TEST_COST = 0.03
# Re-ranking reads its candidates with preadv (vector_reader.py); an exact search over a filtered
# subset still reads through the memory map, and the pages it touched stay mapped into the process,
# counted in its RSS, though the kernel keeps them in its page cache either way. Unmapping them
# every so many searches keeps the RSS bounded; a later read of one is a minor fault.
RELEASE_EVERY = 256
EXACT_COST = 5.0


def _faiss() -> Any:
    # Imported lazily (slow import) and typed loosely: faiss's bundled stubs lag its SWIG API.
    import faiss

    return faiss


def index_dir(collection: Collection, model: str) -> Path:
    return collection.root / "index" / model_slug(model)


def _pq_m(d: int, most: int = 64) -> int:
    for m in PQ_MS:
        if m <= most and d % m == 0 and d // m >= 4:
            return m
    return 1


def _nlist(n: int) -> int:
    # 2 sqrt(n) lists: at a million vectors k-means and the assignment of every vector stay minutes.
    return int(max(16, min(65536, 2 * math.sqrt(n))))


def _nprobe(nlist: int) -> int:
    # About 0.8 % of the lists at a million vectors, never fewer than 16. An unfiltered search
    # probes exactly these (candidates are re-ranked exactly; at 1.08M x 1152-d twice as many
    # lists gave recall@10 0.999, benchmarks/results/index_million.json).
    return min(nlist, max(16, nlist // 128))


def kind_params(kind: str, n: int, d: int, budget: int | None = None) -> dict[str, Any]:
    """Build and search parameters of ``kind`` for ``n`` vectors of ``d`` dimensions; the code
    size of ``ivfsq``/``ivfpq`` is the largest whose estimate fits ``budget``."""
    if kind == "flat":
        return {}
    if kind == "hnsw":
        return dict(HNSW_PARAMS)
    nlist = _nlist(n)
    base = {"nlist": nlist, "nprobe": _nprobe(nlist)}
    if kind == "ivfsq":
        params = {}
        for qtype in SQ_TYPES:
            params = {**base, "qtype": qtype, "rerank": RERANK[qtype]}
            if budget is None or estimate_bytes(kind, n, d, params) <= budget:
                break
        return params
    if kind == "ivfpq":
        params = {}
        for m in [m for m in PQ_MS if m <= _pq_m(d)]:
            if d % m:
                continue
            params = {**base, "m": m, "nbits": 8, "rerank": RERANK["PQ"]}
            if budget is None or estimate_bytes(kind, n, d, params) <= budget:
                break
        return params
    raise BadInput(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")


def estimate_bytes(kind: str, n: int, d: int, params: dict[str, Any]) -> int:
    """Memory the loaded index needs: its structure plus the row numbers, not counting the float32
    vectors used for re-ranking (memory-mapped from disk)."""
    rows = n * ID_BYTES
    if kind == "flat":
        return rows + n * d * 4
    if kind == "hnsw":
        m = int(params.get("M", HNSW_PARAMS["M"]))
        # Level 0 keeps 2M neighbours, upper levels M each for a 1/M share of the vectors.
        links = 4 * (2 * m + m / max(1, m - 1))
        return int(rows + n * (d * 4 + links + 12))
    centroids = int(params["nlist"]) * d * 4
    if kind == "ivfsq":
        code = math.ceil(d * SQ_TYPES[str(params["qtype"])])
        return rows + n * (code + ID_BYTES) + centroids + 2 * d * 4
    if kind == "ivfpq":
        m, nbits = int(params["m"]), int(params.get("nbits", 8))
        code = math.ceil(m * nbits / 8)
        return rows + n * (code + ID_BYTES) + centroids + (1 << nbits) * d * 4
    raise BadInput(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class IndexPlan:
    kind: str
    params: dict[str, Any]
    estimated_bytes: int
    budget: int
    fits: bool


def plan_index(n: int, d: int, budget: int | None = None, kind: str | None = None) -> IndexPlan:
    """The index for ``n`` vectors of ``d`` dimensions under a memory ``budget`` in bytes
    (default: the ``index_memory_budget`` setting): ``kind`` when given, else the first of
    flat (small collections), hnsw, ivfsq (8-, then 4-bit codes), ivfpq whose estimate fits.
    When nothing fits, the smallest ``ivfpq``, marked as not fitting."""
    budget = int(settings.get("index_memory_budget")) if budget is None else int(budget)
    if kind is not None:
        if kind not in KINDS:
            raise BadInput(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        params = kind_params(kind, n, d, budget)
        est = estimate_bytes(kind, n, d, params)
        return IndexPlan(kind, params, est, budget, est <= budget)
    candidates = []
    if n <= int(settings.get("exact_index_max")):
        candidates.append("flat")
    if n <= IVFPQ_ABOVE:
        candidates.append("hnsw")
    candidates += ["ivfsq", "ivfpq"]
    plan = None
    for k in candidates:
        params = kind_params(k, n, d, budget)
        est = estimate_bytes(k, n, d, params)
        plan = IndexPlan(k, params, est, budget, est <= budget)
        if plan.fits:
            return plan
    assert plan is not None
    return plan


def choose_kind(n: int, d: int = 512, budget: int | None = None) -> str:
    return plan_index(n, d, budget).kind


def _training_sample(vecs: np.ndarray, size: int) -> np.ndarray:
    n = len(vecs)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(n, size), replace=False))
    return np.ascontiguousarray(vecs[sample], dtype=np.float32)


def _new_index(faiss: Any, kind: str, d: int, params: dict[str, Any], vecs: np.ndarray) -> Any:
    if kind == "flat":
        return faiss.IndexFlatIP(d)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["efConstruction"]
        return index
    nlist = int(params["nlist"])
    quantizer = faiss.IndexFlatIP(d)
    if kind == "ivfsq":
        qtype = getattr(faiss.ScalarQuantizer, "QT_" + str(params["qtype"])[2:] + "bit")
        index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, qtype, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFPQ(quantizer, d, nlist, int(params["m"]), int(params["nbits"]), faiss.METRIC_INNER_PRODUCT)
    # 10 k-means iterations over about 32 points per list: the lists only route the search
    # (candidates are re-ranked exactly), and this keeps a million-vector build to minutes.
    index.cp.niter = 10
    index.cp.max_points_per_centroid = 64
    index.train(_training_sample(vecs, max(nlist * 32, 20_000)))
    return index


def build_index(
    collection: Collection,
    model: str,
    kind: str | None = None,
    *,
    batch: int = 50_000,
    memory_budget: int | str | None = None,
) -> dict[str, Any]:
    """Build and save the index of ``model``'s vectors; ``kind`` None picks it from the size and
    ``memory_budget`` (bytes or a size such as ``2GB``; default: the ``index_memory_budget``
    setting)."""
    faiss = _faiss()

    store = EmbeddingStore(collection, model)
    vecs = store.vectors()
    n, d = vecs.shape
    if n == 0:
        raise IndexMissing(f"{collection.root} has no embedded images for model {model!r}; nothing to index")
    budget = parse_size(memory_budget) if isinstance(memory_budget, str) else memory_budget
    plan = plan_index(n, d, budget, kind)
    kind, params = plan.kind, plan.params
    started = time.perf_counter()
    index = _new_index(faiss, kind, d, params, vecs)
    trained = time.perf_counter()
    for start in range(0, n, batch):
        index.add(np.ascontiguousarray(vecs[start : start + batch], dtype=np.float32))
    added = time.perf_counter()
    out = index_dir(collection, model)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "index.faiss.tmp"
    faiss.write_index(index, str(tmp))
    os.replace(tmp, out / "index.faiss")
    del index
    on_disk = (out / "index.faiss").stat().st_size
    info = {
        "model": model,
        "dim": d,
        "kind": kind,
        "count": n,
        "params": params,
        "memory_budget_bytes": plan.budget,
        "memory_budget": format_size(plan.budget),
        "estimated_bytes": plan.estimated_bytes,
        # What loading holds besides the memory-mapped float32 vectors: the index and the rows.
        "measured_bytes": on_disk + n * ID_BYTES,
        "index_file_bytes": on_disk,
        "fits_budget": plan.fits,
        "built": now_iso(),
        "build_seconds": round(time.perf_counter() - started, 3),
        "train_seconds": round(trained - started, 3),
        "add_seconds": round(added - trained, 3),
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
    # Answer permissive filters by post-filtering an unfiltered search when that is cheaper.
    postfilter: bool = True
    searches: int = 0  # searches answered, to release mapped vector pages now and then
    reader: VectorReader | None = None  # re-ranking reads vectors through it, not the mapping

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at ascending ``positions``, read without mapping them (see vector_reader)."""
        if self.reader is None:
            self.reader = VectorReader(self.vectors)
        return self.reader.take(positions)

    def __len__(self) -> int:
        return len(self.rows)

    def allowed_positions(self, row_mask: np.ndarray) -> np.ndarray:
        return position_mask(self.rows, row_mask)

    def position_of_row(self, row: int) -> int | None:
        pos = int(np.searchsorted(self.rows, row))
        if pos < len(self.rows) and self.rows[pos] == row:
            return pos
        return None

    def _post_fetch(self, k: int, share: float) -> int:
        """Candidates a post-filtered search fetches for ``k`` results when ``share`` of the
        vectors are allowed; 0 when post-filtering is not worth trying."""
        if not self.postfilter or self.kind not in ("hnsw", "ivfsq", "ivfpq"):
            return 0
        want = max(k * 4, int(self.params.get("rerank", 40)))
        fetch = math.ceil(want / share * POSTFILTER_SAFETY)
        return fetch if fetch <= POSTFILTER_MAX_FETCH else 0

    def _post_probe(self, fetch: int, share: float) -> int:
        """Lists a post-filtered IVF search probes: nprobe / sqrt(share) (the nearest allowed
        vectors lie a little farther out than the nearest ones), and enough to hold 4 x ``fetch``."""
        nlist = int(self.params.get("nlist", 1))
        per_list = len(self.rows) / nlist
        wide = float(self.params.get("nprobe", 16)) / math.sqrt(share)
        return int(min(nlist, math.ceil(max(wide, 4 * fetch / per_list))))

    def _filter_costs(self, k: int, available: int) -> dict[str, float]:
        """Estimated cost (in quantised-code distances) of each way to answer a filter that allows
        ``available`` of the vectors: post-filtering, probing through the filter, exact subset."""
        n = len(self.rows)
        share = available / n
        costs = {"exact": available * EXACT_COST}
        if self.kind in ("ivfsq", "ivfpq"):
            nlist = int(self.params.get("nlist", 1))
            nprobe = float(self.params.get("nprobe", 16))
            per_list = n / nlist
            probe = min(nlist, math.ceil(2 * nprobe / share))
            # Both re-rank their candidates exactly: a post-filter about twice as many.
            want = max(k * 4, int(self.params.get("rerank", 40)))
            costs["selector"] = probe * per_list * (share + SELECTOR_TEST_COST) + want * EXACT_COST
            fetch = self._post_fetch(k, share)
            if fetch:
                costs["post"] = self._post_probe(fetch, share) * per_list + POSTFILTER_SAFETY * want * EXACT_COST
        elif self.kind == "hnsw":
            costs["selector"] = 0.0  # graph walk: cheap either way, keep the filtered walk
            fetch = self._post_fetch(k, share)
            if fetch and share >= 0.25:
                costs["post"] = -1.0
        return costs

    def _postfiltered(
        self, faiss: Any, q: np.ndarray, k: int, allowed: np.ndarray, fetch: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Search without the filter for ``fetch`` candidates, keep the allowed ones and re-rank
        them exactly; None when fewer than ``k`` survive or the k-th score ties the last one."""
        allowed_share = float(np.count_nonzero(allowed)) / len(self.rows)
        params = self._params(faiss, fetch, 1.0, None, 0)
        if self.kind in ("ivfsq", "ivfpq"):
            params.nprobe = self._post_probe(fetch, allowed_share)
        elif self.kind == "hnsw":
            # A graph walk's deepest results are its least exact: a beam of 3 x fetch keeps the
            # allowed ones among them (recall@10 0.91 -> 0.98 at s = 0.45).
            params.efSearch = int(min(16384, POST_HNSW_BEAM * fetch))
        _, ids = self.index.search(q, fetch, params=params)
        ids = ids[0]
        ids = ids[ids >= 0].astype(np.int64)
        ids = np.sort(ids[allowed[ids]])
        if len(ids) < k:
            return None
        scores = self.take(ids) @ q[0]
        kth = np.partition(-scores, k - 1)[k - 1]
        if len(ids) == k or -scores.min() <= kth:
            return None  # a tie at the cut could continue beyond the candidates
        return _topk(scores, ids, k)

    def _exact(self, q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return _topk(np.asarray(self.vectors[cand]) @ q, cand, k)

    def _params(self, faiss: Any, fetch: int, share: float, sel: Any, widen: int) -> Any:
        """Search parameters for one query: ``share`` of the vectors allowed by the filter,
        ``widen`` how many times the search was already too narrow to find enough of them."""
        if self.kind == "hnsw":
            ef = max(int(self.params.get("efSearch", 128)), fetch)
            if sel is not None:
                # A filter keeping a share s of the vectors leaves about s x ef allowed ones in the
                # beam: widen it by 1/s (50k BL-like vectors: recall@10 at s = 0.17 was 0.78 by 1/4s, 0.97 by 1/s).
                ef = int(min(4096, ef / min(1.0, share)))
            params = faiss.SearchParametersHNSW(efSearch=int(min(16384, ef * 4**widen)))
        elif self.kind in ("ivfsq", "ivfpq"):
            nlist = int(self.params.get("nlist", 1))
            # A filter keeping a share s of the vectors needs about 1/s times the lists to meet
            # as many allowed candidates (skipping the others costs only a bitmap test), and twice
            # that again: the nearest allowed vectors lie farther out than the nearest ones.
            probe = float(self.params.get("nprobe", 16)) * 4**widen
            if sel is not None:
                probe *= 2 / max(share, 1e-9)
            params = faiss.SearchParametersIVF(nprobe=int(min(nlist, math.ceil(probe))))
        else:
            params = faiss.SearchParameters()
        if sel is not None:
            params.sel = sel
        return params

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, positions) for one query vector; ``allowed`` masks vector positions.

        With a filter, ``min(k, allowed items)`` results always come back: a search that meets too
        few allowed candidates is widened, and as a last resort answered exactly."""
        faiss = _faiss()

        self.searches += 1  # a lost increment under concurrency only delays a release
        if self.searches % RELEASE_EVERY == 0:
            release_pages(self.vectors)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        n = len(self.rows)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        share = 1.0
        available = n
        sel = None
        if allowed is not None:
            available = int(np.count_nonzero(allowed))
            if available == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            if available <= SUBSET_EXACT_MAX or available <= k:
                return self._exact(q[0], np.flatnonzero(allowed), k)
            share = available / n
            if self.kind != "flat":
                costs = self._filter_costs(k, available)
                best = min(costs, key=lambda way: costs[way])
                if best == "post":
                    got = self._postfiltered(faiss, q, k, allowed, self._post_fetch(k, share))
                    if got is not None:
                        return got
                elif best == "exact":
                    return self._exact(q[0], np.flatnonzero(allowed), k)
            bits = np.packbits(allowed.astype(np.uint8, copy=False), bitorder="little")
            sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        # Approximate indexes fetch extra candidates, then re-rank them with the exact vectors.
        rerank = int(self.params.get("rerank", 40))
        fetch = min(n, k if self.kind == "flat" else max(k * 4, rerank))
        widen = 0
        while True:
            params = self._params(faiss, fetch, share, sel, widen)
            scores, ids = self.index.search(q, fetch, params=params)
            got_scores, ids = scores[0], ids[0]
            got_scores, ids = got_scores[ids >= 0], ids[ids >= 0].astype(np.int64)
            if len(ids) < min(k, available):
                # Too few allowed candidates met: search wider, finally exactly.
                if self.kind == "flat" or widen >= 3:
                    return self._exact(q[0], np.flatnonzero(allowed) if allowed is not None else np.arange(n), k)
                widen += 1
                continue
            if self.kind != "flat":
                ids = np.sort(ids)
                got_scores = self.take(ids) @ q[0]
            # Equal scores (duplicate images) must not make paging unstable: if the k-th score is
            # tied with the last fetched one, fetch deeper so the tie is broken by position.
            if len(ids) < fetch or fetch >= available or len(ids) < k:
                break
            kth = np.partition(-got_scores, k - 1)[k - 1]
            if -got_scores.min() > kth:
                break
            fetch = min(n, fetch * 4)
        return _topk(got_scores, ids, k)


def position_mask(rows: np.ndarray, row_mask: np.ndarray) -> np.ndarray:
    """A mask over dataset rows as a mask over the vector positions of ``rows`` (ascending): no
    copy when every row has a vector, as positions then equal rows."""
    n = len(rows)
    if n == len(row_mask) and (n == 0 or int(rows[-1]) == n - 1):
        return row_mask
    return row_mask[rows]


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


def _madvise(vectors: np.ndarray, advice_name: str) -> bool:
    """Give memory-mapped ``vectors`` the ``mmap.MADV_*`` advice named; False when they are not a
    mapping or the platform cannot."""
    import mmap

    mm = getattr(vectors, "_mmap", None)
    advice = getattr(mmap, advice_name, None)
    if mm is None or advice is None or not hasattr(mm, "madvise"):
        return False
    try:
        mm.madvise(advice)
    except (OSError, ValueError):
        return False
    return True


def advise_random(vectors: np.ndarray, random: bool = True) -> bool:
    """Tell the kernel that re-ranking reads memory-mapped ``vectors`` at random (no read-ahead:
    a re-ranked vector pulls in its own pages only, not its neighbours'). False when unsupported."""
    return _madvise(vectors, "MADV_RANDOM" if random else "MADV_NORMAL")


def release_pages(vectors: np.ndarray) -> bool:
    """Unmap the pages of memory-mapped ``vectors`` from this process (they stay in the page cache;
    the mapping stays valid). False when ``vectors`` is not a read-only mapping or it is unsupported."""
    return getattr(vectors, "mode", "r") == "r" and _madvise(vectors, "MADV_DONTNEED")


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
    # Read into memory, not mapped: the lists are scanned on every query, and mapped pages that
    # the kernel drops under memory pressure made filtered queries wait on the disk.
    index = faiss.read_index(str(d / "index.faiss"))
    advise_random(vectors)
    return VectorIndex(
        model=model,
        kind=str(meta["kind"]),
        dim=int(meta["dim"]),
        index=index,
        vectors=vectors,
        rows=rows,
        params=dict(meta.get("params", {})),
        reader=VectorReader(vectors),
    )
