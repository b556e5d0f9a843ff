"""A 2D layout of the picture space: every picture placed so that similar ones lie close.

Vectors are first reduced to ``PCA_DIMS`` dimensions (a principal-component projection fitted on a
sample), then laid out by UMAP (McInnes et al., 2018), whose neighbour graph is computed exactly
with FAISS (``precomputed_knn``). Up to ``FIT_MAX`` pictures UMAP is fitted on all of them; above,
on a random sample of ``sample`` pictures, and the rest are placed in chunks where UMAP's own
``transform`` starts them: at the mean of their nearest fitted neighbours' positions, weighted by
UMAP's membership kernel. ``transform`` would then optimise each placed point further, which
costs minutes per 100,000 points on two cores (and a JIT compilation per process); the placement
alone keeps a million-point map to minutes. Every step is written to a work folder as it finishes
(the projection, the fitted sample, each placed chunk), so an interrupted build resumes.

Coordinates are scaled into [0, 1] (the extreme 0.05 % on each side clamped to the border) and
quantised to 16 bits: ``NO_POSITION`` marks items with no picture vector.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..collection import write_bytes_atomic, write_json_atomic
from ..vector_reader import VectorReader

FIT_MAX = 200_000  # above this many pictures, UMAP is fitted on a sample
DEFAULT_SAMPLE = 50_000
PCA_DIMS = 50
CHUNK_ROWS = 50_000  # pictures placed per resumable chunk
READ_ROWS = 65_536  # vectors read at once
SMALL = 16  # fewer pictures than this: the projection's first two components, no UMAP
EXACT_PLACE = 20_000  # fitted points searched exactly when placing the rest
NO_POSITION = 65535
SCALE = 65534  # quantised coordinates run 0..SCALE

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LayoutPlan:
    space: str
    count: int
    dim: int
    fingerprint: str
    sample: int  # pictures UMAP is fitted on
    neighbours: int
    min_dist: float
    seed: int


def _save_npz(path: Path, **arrays: Any) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


class LayoutWork:
    def __init__(self, folder: Path, plan: LayoutPlan) -> None:
        self.folder = folder
        self.plan = plan
        plan_file = folder / "plan.json"
        same = False
        if plan_file.is_file():
            try:
                same = json.loads(plan_file.read_text(encoding="utf-8")) == asdict(plan)
            except (OSError, json.JSONDecodeError):
                same = False
        if not same:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(plan_file, asdict(plan))


def _projection(vectors: VectorReader, plan: LayoutPlan, work: LayoutWork) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components) of a principal-component projection fitted on a sample."""
    found = _load_npz(work.folder / "projection.npz")
    if found is not None:
        return found["mean"], found["components"]
    n = plan.count
    pick = np.sort(np.random.default_rng(plan.seed).choice(n, size=min(n, 20_000), replace=False))
    x = vectors.take(pick)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = np.ascontiguousarray(vt[: min(PCA_DIMS, vt.shape[0])], np.float32)
    _save_npz(work.folder / "projection.npz", mean=mean, components=comps)
    return mean, comps


def _reduced(vectors: VectorReader, rows: np.ndarray, mean: np.ndarray, comps: np.ndarray) -> np.ndarray:
    """Projected vectors at positions ``rows`` (sorted), read in blocks."""
    out = np.empty((len(rows), comps.shape[0]), np.float32)
    for s in range(0, len(rows), READ_ROWS):
        block = vectors.take(rows[s : s + READ_ROWS])
        out[s : s + READ_ROWS] = (block - mean) @ comps.T
    return out


def _knn(points: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest ``points`` of each query (euclidean): (indices, distances)."""
    import faiss

    index = faiss.IndexFlatL2(points.shape[1])
    index.add(np.ascontiguousarray(points, np.float32))
    d2, idx = index.search(np.ascontiguousarray(queries, np.float32), min(k, len(points)))
    return idx.astype(np.int32), np.sqrt(np.maximum(d2, 0)).astype(np.float32)


def _fit(plan: LayoutPlan, red: np.ndarray) -> np.ndarray:
    """UMAP positions of ``red`` (the fitted sample), on a neighbour graph computed by FAISS."""
    import warnings

    import umap

    k = max(2, min(plan.neighbours, len(red) - 1))
    idx, dist = _knn(red, red, k)
    reducer = umap.UMAP(
        n_neighbors=k,
        min_dist=plan.min_dist,
        random_state=plan.seed,
        low_memory=True,
        n_jobs=1,  # with random_state set UMAP runs on one thread anyway; say so
        precomputed_knn=(idx, dist, None),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(reducer.fit_transform(red), np.float32)


def neighbour_index(points: np.ndarray) -> Any:
    """A FAISS index of the fitted points for placing the rest: exact up to ``EXACT_PLACE``
    points, else an HNSW graph (a placement averages neighbours, so near-exact ones do)."""
    import faiss

    pts = np.ascontiguousarray(points, np.float32)
    index: Any
    if len(pts) <= EXACT_PLACE:
        index = faiss.IndexFlatL2(pts.shape[1])
    else:
        index = faiss.IndexHNSWFlat(pts.shape[1], 16)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = 64
    index.add(pts)
    return index


def place(sample_red: np.ndarray, sample_xy: np.ndarray, red: np.ndarray, k: int, index: Any = None) -> np.ndarray:
    """Positions of new points: the mean of their ``k`` nearest fitted points' positions, weighted
    as UMAP weighs neighbours (exp(-(d - d_nearest) / sigma), sigma the mean excess distance)."""
    index = index if index is not None else neighbour_index(sample_red)
    d2, idx = index.search(np.ascontiguousarray(red, np.float32), min(k, len(sample_red)))
    found = idx >= 0
    idx = np.where(found, idx, idx.max(initial=0))
    dist = np.where(found, np.sqrt(np.maximum(d2, 0)), np.inf).astype(np.float32)
    excess = dist - dist[:, :1]
    sigma = np.maximum(np.where(found, excess, 0).mean(1, keepdims=True), 1e-6)
    w = np.where(found, np.exp(-np.where(found, excess, 0) / sigma), 0)
    w /= w.sum(1, keepdims=True)
    return np.einsum("nk,nkd->nd", w, sample_xy[idx]).astype(np.float32)


def compute_layout(
    vectors: np.ndarray, plan: LayoutPlan, folder: Path, progress: Progress | None = None
) -> tuple[np.ndarray, str]:
    """(n, 2) float32 positions of every vector (in vector order) and the method used."""
    with VectorReader(vectors) as reader:
        return _layout(reader, plan, LayoutWork(folder, plan), progress)


def _layout(
    vectors: VectorReader, plan: LayoutPlan, work: LayoutWork, progress: Progress | None
) -> tuple[np.ndarray, str]:
    n = plan.count
    mean, comps = _projection(vectors, plan, work)
    if n < SMALL:
        red = _reduced(vectors, np.arange(n), mean, comps)
        xy = np.zeros((n, 2), np.float32)
        xy[:, : min(2, red.shape[1])] = red[:, :2]
        return xy, "pca"
    sample = np.sort(np.random.default_rng(plan.seed + 1).choice(n, size=min(n, plan.sample), replace=False))
    fitted = _load_npz(work.folder / "fit.npz")
    if fitted is None:
        sample_red = _reduced(vectors, sample, mean, comps)
        fitted = {"red": sample_red, "xy": _fit(plan, sample_red)}
        _save_npz(work.folder / "fit.npz", **fitted)
    if progress:
        progress("fitting", 1, 1)
    xy = np.full((n, 2), np.nan, np.float32)
    xy[sample] = fitted["xy"]
    rest = np.setdiff1d(np.arange(n), sample)
    starts = list(range(0, len(rest), CHUNK_ROWS))
    index = neighbour_index(fitted["red"]) if len(rest) else None
    for i, s in enumerate(starts):
        part = rest[s : s + CHUNK_ROWS]
        name = work.folder / f"placed-{s:010d}.npz"
        got = _load_npz(name)
        if got is None:
            red = _reduced(vectors, part, mean, comps)
            got = {"xy": place(fitted["red"], fitted["xy"], red, plan.neighbours, index)}
            _save_npz(name, **got)
        xy[part] = got["xy"]
        if progress:
            progress("placing", i + 1, len(starts))
    return xy, "umap" if len(rest) == 0 else "umap+placed"


def quantise(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """uint16 (x, y) in 0..SCALE (y grows downwards, as on a screen) and the bounds used."""
    finite = np.isfinite(xy).all(1)
    if not finite.any():
        z = np.full(len(xy), NO_POSITION, np.uint16)
        return z, z.copy(), {"x0": 0.0, "x1": 1.0, "y0": 0.0, "y1": 1.0}
    lo = np.percentile(xy[finite], 0.05, axis=0)
    hi = np.percentile(xy[finite], 99.95, axis=0)
    span = np.maximum(hi - lo, 1e-9)
    # The same scale on both axes, so distances mean the same across and down.
    side = float(span.max())
    centre = (lo + hi) / 2
    unit = (xy - centre) / side + 0.5
    unit[:, 1] = 1 - unit[:, 1]
    q = np.clip(np.rint(np.nan_to_num(unit, nan=0.0) * SCALE), 0, SCALE).astype(np.uint16)
    q[~finite] = NO_POSITION
    bounds = {"x0": float(centre[0] - side / 2), "x1": float(centre[0] + side / 2),
              "y0": float(centre[1] - side / 2), "y1": float(centre[1] + side / 2)}
    return q[:, 0].copy(), q[:, 1].copy(), bounds
